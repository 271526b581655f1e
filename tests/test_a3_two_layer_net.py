"""Assignment 3 (two-layer net): stock autograde scores simulated students exactly and names their
mistakes, and the grader's own check (the verifier) agrees, student by student.

Each exercise's points depend only on its own code: the net is graded with reference layers
swapped into the student's layer classes, the training loop on a net built from torch's ops, and
the held-out accuracy is computed on the trusted side from predictions (no labels in the kernel).
"""
import nbformat
import pytest

from grader.course import Course
from grader.demo import simulate
from grader.steps import verify
from simulated_class import answers_with, grade_class, messages

pytestmark = pytest.mark.slow

ASSIGNMENT, NOTEBOOK = "a3_two_layer_net", "two_layer_net"
POINTS = {"test_layers": 2, "test_two_layer_net": 3, "test_numerical_gradient": 2, "test_accuracy": 2}
RIGHT_SGD = "param -= lr * grad"

# the book's own design: layer objects built in __init__ that hold W and b
BOOK_DESIGN = '''class AffineLayer:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def __call__(self, x):
        return Affine.apply(x, self.W, self.b)


class TwoLayerNet:

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01,
                 dtype=torch.float32, generator=None):
        def weights(rows, cols):
            return (weight_init_std * torch.randn(rows, cols, dtype=dtype, generator=generator)).requires_grad_()
        self.params = {"W1": weights(input_size, hidden_size), "b1": torch.zeros(hidden_size, dtype=dtype, requires_grad=True),
                       "W2": weights(hidden_size, output_size), "b2": torch.zeros(output_size, dtype=dtype, requires_grad=True)}
        self.layers = [AffineLayer(self.params["W1"], self.params["b1"]), ReLU.apply,
                       AffineLayer(self.params["W2"], self.params["b2"])]
        self.last_layer = SoftmaxWithLoss.apply

    def predict(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def loss(self, x, t):
        return self.last_layer(self.predict(x), t)

    def accuracy(self, x, t):
        with torch.no_grad():
            labels = t if t.dim() == 1 else t.argmax(dim=1)
            return (self.predict(x).argmax(dim=1) == labels).double().mean().item()

    def gradient(self, x, t):
        grads = torch.autograd.grad(self.loss(x, t), list(self.params.values()))
        return dict(zip(self.params, grads))
'''

# x[i] += h; x[i] -= 2*h; x[i] += h: x restored up to rounding
STEPWISE = '''def numerical_gradient(f, x, h=1e-4):
    grad = torch.zeros_like(x)
    flat, flat_grad = x.view(-1), grad.view(-1)
    with torch.no_grad():
        for i in range(flat.numel()):
            flat[i] += h
            f_plus = float(f(x))
            flat[i] -= 2 * h
            f_minus = float(f(x))
            flat[i] += h
            flat_grad[i] = (f_plus - f_minus) / (2 * h)
    return grad
'''


def mistakes(correct):
    """{name: answers with one mistake or one correct variant}."""
    sgd = ("            grads = torch.autograd.grad(loss, list(net.params.values()))\n"
           "            with torch.no_grad():\n"
           "                for param, grad in zip(net.params.values(), grads):\n"
           "                    param -= lr * grad\n")
    # .grad accumulated over minibatches, never zeroed
    accumulating = ("            loss.backward()\n"
                    "            with torch.no_grad():\n"
                    "                for param in net.params.values():\n"
                    "                    param -= lr * param.grad\n")
    return {
        # torch.zeros(x.shape) is float32: a numerical gradient that loses precision
        "float32_numerical": answers_with(correct, "numerical_gradient", "grad = torch.zeros_like(x)",
                                          "grad = torch.zeros(x.shape)"),
        # a net built from torch's ops, not the student's Functions
        "torch_ops_net": answers_with(correct, "two_layer_net", 'hidden = ReLU.apply(Affine.apply(x, p["W1"], p["b1"]))',
                                      'hidden = torch.relu(x @ p["W1"] + p["b1"])'),
        # one mistake in a layer costs the layers' exercise only (it cost 7 of 9 points before)
        "relu_ignores_upstream": answers_with(correct, "layers", "return grad_output.masked_fill(mask, 0)",
                                              "return torch.ones_like(grad_output).masked_fill(mask, 0)"),
        "softmax_not_divided": answers_with(correct, "layers", "return grad_output * (y - t) / y.shape[0], None",
                                            "return grad_output * (y - t), None"),
        "book_design": dict(correct, two_layer_net=BOOK_DESIGN),
        "stepwise_restore": dict(correct, numerical_gradient=STEPWISE),
        "accumulating_grad": dict(correct, train=correct["train"].replace(sgd, accumulating)),
        "ascent": answers_with(correct, "train", RIGHT_SGD, "param += lr * grad"),
        "never_updates": answers_with(correct, "train", RIGHT_SGD, "pass"),
        # gradient() by .backward(), .grad never zeroed: a second call returns twice the gradient
        "gradient_accumulates": dict(correct, two_layer_net=correct["two_layer_net"].replace(
            "        grads = torch.autograd.grad(self.loss(x, t), list(self.params.values()))\n"
            "        return dict(zip(self.params, grads))",
            "        self.loss(x, t).backward()\n"
            "        return {name: p.grad for name, p in self.params.items()}")),
    }


# Students with several independent mistakes or variants, one per exercise at most (each graded
# alone, so each must cost its own exercise and nothing else): {student: (mistakes, exercises lost)}.
STUDENTS = {
    "relu_book_accumulating": (("relu_ignores_upstream", "book_design", "accumulating_grad"),
                               {"test_layers", "test_accuracy"}),
    "softmax_accumulates_never_updates": (("softmax_not_divided", "gradient_accumulates", "never_updates"),
                                          {"test_layers", "test_two_layer_net", "test_accuracy"}),
    "float32_torch_ops_ascent": (("float32_numerical", "torch_ops_net", "ascent"),
                                 {"test_numerical_gradient", "test_two_layer_net", "test_accuracy"}),
    "stepwise_restore": (("stepwise_restore",), set()),
}


def students(correct):
    variants = mistakes(correct)
    built = {"correct": correct, "blank": {}}
    for student, (names, _) in STUDENTS.items():
        answers = dict(correct)
        for name in names:
            answers.update({k: v for k, v in variants[name].items() if v != correct.get(k)})
        built[student] = answers
    return built


@pytest.fixture(scope="module")
def graded(released_course):
    correct = simulate.solution_answers(released_course.solutions / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    return released_course, grade_class(released_course, ASSIGNMENT, NOTEBOOK, students(correct))


def test_correct_gets_full_marks_and_blank_gets_zero(graded):
    _, scores = graded
    assert scores["correct"] == POINTS
    assert sum(scores["blank"].values()) == 0


@pytest.mark.parametrize("student", STUDENTS)
def test_each_answer_loses_only_its_own_exercise(graded, student):
    _, scores = graded
    lost = STUDENTS[student][1]
    assert scores[student] == {name: (0 if name in lost else points) for name, points in POINTS.items()}


@pytest.mark.sandbox
@pytest.mark.parametrize("student", STUDENTS)
def test_the_graders_check_agrees_with_the_notebooks_tests(tmp_path, student):
    course = Course()
    correct = simulate.solution_answers(course.solutions / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    path = tmp_path / f"{NOTEBOOK}.ipynb"
    nbformat.write(simulate.build_submission(course.release / ASSIGNMENT / f"{NOTEBOOK}.ipynb",
                                             students(correct)[student]), path)
    found = verify.verify_notebook(verify.spec_for(ASSIGNMENT), path, seed=11, timeout=60,
                                   helpers=course.release / ASSIGNMENT)
    failed = {grade_id: verdict.reason for grade_id, verdict in found.items() if not verdict.passed}
    assert set(failed) == STUDENTS[student][1], failed


def test_mistakes_are_named(graded):
    course, _ = graded
    found = messages(course, ASSIGNMENT, NOTEBOOK, "float32_torch_ops_ascent")
    assert "float32, use torch.zeros_like(x)" in found["test_numerical_gradient"]
    assert "your layers' .apply" in found["test_two_layer_net"]
    assert "-lr × gradient" in found["test_accuracy"]


def test_no_held_out_labels_in_the_notebooks_tests():
    """The hidden part of the training test scores no predictions against labels it holds."""
    nb = nbformat.read(Course().solutions / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_accuracy")
    hidden = test.source.split("### BEGIN HIDDEN TESTS")[1]
    assert "load_digits" not in hidden and "accuracy" not in hidden and "argmax" not in hidden
