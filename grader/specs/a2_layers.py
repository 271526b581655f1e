"""a2_layers: ReLU (exact zeros included), Sigmoid, Affine (exact shapes: the bias gradient summed
over the batch) and SoftmaxWithLoss (integer and one-hot labels, no gradient for them; large logits)
against torch, on the shapes the notebook's hidden tests draw (``backprop_checks.CASES``)."""
import torch
import torch.nn.functional as F

from .cases import Labels, course_cases, function_case

PREAMBLE = "import torch.nn.functional as F\nfrom backprop_checks import check_function, random_inputs"
CASES, LARGE_LOGITS = course_cases()


def affine(x, W, b):
    return x @ W + b


def relu_cases():
    return [function_case("ReLU", torch.relu, shapes, zeros=zeros) for shapes in CASES["ReLU"] for zeros in (False, True)]


def affine_cases():
    return [function_case("Affine", affine, shapes, exact_shapes=True) for shapes in CASES["Affine"]]


def softmax_cases():
    """Integer and one-hot labels in turn, as the notebook; each at ordinary and at large logits."""
    return [function_case("SoftmaxWithLoss", F.cross_entropy, [(n, c), Labels(n, c, one_hot=bool(number % 2))], scale=scale)
            for number, (n, c) in enumerate(CASES["SoftmaxWithLoss"]) for scale in (1.0, LARGE_LOGITS)]


TESTS = {
    "test_relu": relu_cases(),
    "test_sigmoid": [function_case("Sigmoid", torch.sigmoid, shapes) for shapes in CASES["Sigmoid"]],
    "test_affine": affine_cases(),
    "test_softmax_with_loss": softmax_cases(),
}
