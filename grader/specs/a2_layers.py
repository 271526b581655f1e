"""a2_layers: ReLU, Sigmoid, Affine (exact shapes: the bias gradient summed over the batch) and
SoftmaxWithLoss (integer and one-hot labels, no gradient for them) against torch."""
import torch
import torch.nn.functional as F

from .cases import Labels, function_case

PREAMBLE = "import torch.nn.functional as F\nfrom backprop_checks import check_function, random_inputs"


def affine(x, W, b):
    return x @ W + b


TESTS = {
    "test_relu": [function_case("ReLU", torch.relu, shapes) for shapes in ([(7,)], [(4, 6)], [(2, 3, 5)])],
    "test_sigmoid": [function_case("Sigmoid", torch.sigmoid, shapes) for shapes in ([()], [(8,)], [(3, 5)])],
    "test_affine": [function_case("Affine", affine, shapes, exact_shapes=True)
                    for shapes in ([(5, 3), (3, 4), (4,)], [(1, 6), (6, 2), (2,)], [(7, 4), (4, 4), (4,)])],
    "test_softmax_with_loss": [
        function_case("SoftmaxWithLoss", F.cross_entropy, [(6, 4), Labels(6, 4)]),
        function_case("SoftmaxWithLoss", F.cross_entropy, [(6, 4), Labels(6, 4, one_hot=True)]),
        function_case("SoftmaxWithLoss", F.cross_entropy, [(3, 5), Labels(3, 5)]),
    ],
}
