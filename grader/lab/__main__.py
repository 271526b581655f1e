from grader.lab import main

main()
