"""a3_two_layer_net: the layers (as in a2); TwoLayerNet's gradients against torch on fresh weights
and inputs, with reference layers in place of the student's; the numerical gradient on 1-D, 2-D
and 3-D inputs and on a parameter that requires grad; the student's training loop, run on a
reference net: a few steps from known parameters must be plain SGD's, and trained on a split of
the digits drawn at grading time, judged here by the held-out accuracy of the runner's
predictions (the test labels never leave this process).

Each exercise's points depend only on its own code: the net is graded with the reference layers
below swapped into the student's layer classes, and the training loop on a reference net."""
import functools
import gzip
import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F

from .a2_layers import affine_cases, relu_cases, softmax_cases
from .cases import Labels, layered_net_case, numerical_case, sgd_case, trained_case

PREAMBLE = ("import torch.nn.functional as F\nimport matplotlib.pyplot as plt\n"
            "from backprop_checks import check_function, check_numerical_gradient, graph_functions, "
            "random_inputs, relative_error")
PARAMS = {"W1": (7, 4), "b1": (4,), "W2": (4, 5), "b2": (5,)}
SMALL = {"W1": (3, 8), "b1": (8,), "W2": (8, 2), "b2": (2,)}
LAYERS = {"Affine", "ReLU", "SoftmaxWithLoss"}

# Run inside the runner ("net" kind): the layers the net exercise and the training exercise are
# graded with, and the net the training loop trains (torch's ops: not a student's exercise).
REFERENCES = '''
import torch.nn.functional as F


class ReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        mask = x <= 0
        ctx.save_for_backward(mask)
        return x.masked_fill(mask, 0)

    @staticmethod
    def backward(ctx, grad_output):
        mask, = ctx.saved_tensors
        return grad_output.masked_fill(mask, 0)


class Affine(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, W, b):
        ctx.save_for_backward(x, W)
        return x @ W + b

    @staticmethod
    def backward(ctx, grad_output):
        x, W = ctx.saved_tensors
        return grad_output @ W.T, x.T @ grad_output, grad_output.sum(dim=0)


class SoftmaxWithLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, t):
        if t.dim() == 1:
            t = F.one_hot(t, x.shape[1]).to(x.dtype)
        log_y = torch.log_softmax(x, dim=1)
        ctx.save_for_backward(log_y.exp(), t)
        return -(t * log_y).sum() / x.shape[0]

    @staticmethod
    def backward(ctx, grad_output):
        y, t = ctx.saved_tensors
        return grad_output * (y - t) / y.shape[0], None


class ReferenceNet:
    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.1, dtype=torch.float32,
                 generator=None):
        def weights(rows, cols):
            return (weight_init_std * torch.randn(rows, cols, dtype=dtype, generator=generator)).requires_grad_()
        self.params = {"W1": weights(input_size, hidden_size),
                       "b1": torch.zeros(hidden_size, dtype=dtype, requires_grad=True),
                       "W2": weights(hidden_size, output_size),
                       "b2": torch.zeros(output_size, dtype=dtype, requires_grad=True)}

    def predict(self, x):
        p = self.params
        return torch.relu(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]

    def loss(self, x, t):
        return F.cross_entropy(self.predict(x), t)

    def accuracy(self, x, t):
        with torch.no_grad():
            labels = t if t.dim() == 1 else t.argmax(dim=1)
            return (self.predict(x).argmax(dim=1) == labels).double().mean().item()

    def gradient(self, x, t):
        grads = torch.autograd.grad(self.loss(x, t), list(self.params.values()))
        return dict(zip(self.params, grads))
'''

TEST_SIZE = 400  # of the 1797 digits, held out at grading time (the notebook holds out 300 of its own)
TRAINING = {"epochs": 20, "batch_size": 100, "lr": 0.5}  # the notebook's own settings


@functools.cache
def digits():
    """load_digits' images (1797, 64, scaled to 0..1) and labels, read from scikit-learn's own file
    without importing scikit-learn (seconds of every grading process's time, for one CSV)."""
    path = Path(importlib.util.find_spec("sklearn").submodule_search_locations[0]) / "datasets/data/digits.csv.gz"
    with gzip.open(path, "rt") as rows:
        table = torch.tensor([[int(v) for v in row.split(",")] for row in rows if row.strip()])
    return table[:, :-1].float() / 16, table[:, -1]


def digits_split(generator):
    """A split of the digits drawn at grading time: (x_train, t_train, x_test, t_test)."""
    images, labels = digits()
    order = torch.randperm(len(images), generator=generator)
    test, train = order[:TEST_SIZE], order[TEST_SIZE:]
    return images[train], labels[train], images[test], labels[test]


def two_layer_loss(p, x, t):
    return F.cross_entropy(F.linear(F.relu(F.linear(x, p["W1"].T, p["b1"])), p["W2"].T, p["b2"]), t)


def net_case(params, batch, one_hot):
    sizes = (params["W1"][0], params["W1"][1], params["W2"][1])
    return layered_net_case("TwoLayerNet", sizes, params, [(batch, sizes[0]), Labels(batch, sizes[2], one_hot)],
                            two_layer_loss, LAYERS, REFERENCES)


TESTS = {
    "test_layers": relu_cases() + affine_cases() + softmax_cases(),  # as in a2
    "test_two_layer_net": [net_case(PARAMS, 6, False), net_case(PARAMS, 6, True), net_case(SMALL, 1, False)],
    "test_numerical_gradient": [numerical_case("numerical_gradient", (5,)),
                                numerical_case("numerical_gradient", (3, 4)),
                                numerical_case("numerical_gradient", (2, 3, 2)),
                                numerical_case("numerical_gradient", (4, 3), requires_grad=True),
                                numerical_case("numerical_gradient", (3, 2), requires_grad=True, reads_x=True)],
    "test_accuracy": [sgd_case("train", REFERENCES, "ReferenceNet", (5, 4, 3), {"W1": (5, 4), "b1": (4,), "W2": (4, 3),
                                                                             "b2": (3,)},
                               [(23, 5), Labels(23, 3)], {"epochs": 2, "batch_size": 5, "lr": 0.3, "seed": 4}),
                      trained_case("train", digits_split, REFERENCES, "ReferenceNet", (64, 50, 10), TRAINING,
                                   minimum=0.9)],
}
