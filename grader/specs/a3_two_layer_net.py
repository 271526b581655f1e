"""a3_two_layer_net: the layers (as in a2), TwoLayerNet's gradients against torch on fresh weights
and inputs, and the numerical gradient on 1-D, 2-D and 3-D inputs and on a parameter that requires
grad. The held-out accuracy (test_accuracy) stays the notebook's own test: it trains for seconds."""
import torch
import torch.nn.functional as F

from .a2_layers import affine
from .cases import Labels, function_case, model_case, numerical_case

PREAMBLE = ("import torch.nn.functional as F\nimport matplotlib.pyplot as plt\n"
            "from backprop_checks import check_function, check_numerical_gradient, graph_functions, "
            "random_inputs, relative_error")
PARAMS = {"W1": (7, 4), "b1": (4,), "W2": (4, 5), "b2": (5,)}
SMALL = {"W1": (3, 8), "b1": (8,), "W2": (8, 2), "b2": (2,)}


def two_layer_loss(p, x, t):
    return F.cross_entropy(F.linear(F.relu(F.linear(x, p["W1"].T, p["b1"])), p["W2"].T, p["b2"]), t)


def net_case(params, batch, one_hot):
    sizes = (params["W1"][0], params["W1"][1], params["W2"][1])
    return model_case("TwoLayerNet", sizes, params, [(batch, sizes[0]), Labels(batch, sizes[2], one_hot)],
                      two_layer_loss, functions={"Affine", "ReLU", "SoftmaxWithLoss"})


TESTS = {
    "test_layers": [
        function_case("ReLU", torch.relu, [(5, 6)]),
        function_case("Affine", affine, [(6, 5), (5, 3), (3,)], exact_shapes=True),
        function_case("SoftmaxWithLoss", F.cross_entropy, [(5, 4), Labels(5, 4, one_hot=True)]),
        function_case("SoftmaxWithLoss", F.cross_entropy, [(4, 3), Labels(4, 3)]),
    ],
    "test_two_layer_net": [net_case(PARAMS, 6, False), net_case(PARAMS, 6, True), net_case(SMALL, 1, False)],
    "test_numerical_gradient": [numerical_case("numerical_gradient", (5,)),
                                numerical_case("numerical_gradient", (3, 4)),
                                numerical_case("numerical_gradient", (2, 3, 2)),
                                numerical_case("numerical_gradient", (4, 3), requires_grad=True)],
}
