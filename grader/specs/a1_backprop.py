"""a1_backprop: Square, Add and Mul against torch; the apple graphs built from the student's nodes."""
import torch

from .cases import function_case, graph_case


def apple(apple, num, ctax):
    return apple * num * ctax


def fruit(apple, num_apple, tangerine, num_tangerine, ctax):
    return (apple * num_apple + tangerine * num_tangerine) * ctax


TESTS = {
    "test_square": [function_case("Square", torch.square, shapes) for shapes in ([()], [(7,)], [(3, 5)])],
    "test_add": [function_case("Add", torch.add, shapes) for shapes in ([(), ()], [(6,), (6,)], [(3, 4), (4,)])],
    "test_mul": [function_case("Mul", torch.mul, shapes) for shapes in ([(), ()], [(9,), (9,)], [(2, 5), (5,)])],
    "test_apple_shopping": [graph_case("apple_shopping", apple, (100.0, 2.0, 1.1), output=1,
                                       nodes={"MulBackward"})],
    "test_fruit_shopping": [graph_case("fruit_shopping", fruit, (100.0, 2.0, 150.0, 3.0, 1.1),
                                       output="result", nodes={"MulBackward", "AddBackward"})],
}
