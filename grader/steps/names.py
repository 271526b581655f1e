"""What the names of a notebook mean, and which of its code ends up as a Function's backward.

``Names`` follows imports and assignments (flow-insensitively: every meaning a name ever has);
``derivative_code`` finds every function that becomes a Function's ``backward`` (or ``vjp``,
``jvp``), a3's ``numerical_gradient``, the methods of a class that has one, and what they call.
"""
import ast

from .read_cells import dotted, string

DEFAULT_NAMES = {"np": "numpy", "plt": "matplotlib.pyplot", "F": "torch.nn.functional", "nn": "torch.nn"}
DERIVATIVE_NAMES = {"backward", "vjp", "jvp", "numerical_gradient"}
FUNCTION_SLOTS = {"backward", "vjp", "jvp"}
MAX_QUALIFIED = 8  # meanings kept per name


class Names:
    """What each name of the notebook may mean: {name: qualified names}, from its imports and
    assignments (flow-insensitive: every meaning a name ever has); '' marks a local value."""

    def __init__(self):
        self.bound = {}

    def resolve(self, node):
        """The qualified names an expression may stand for ('torch.autograd.grad'), or set()."""
        if isinstance(node, ast.Name):
            if node.id in self.bound:
                return {q for q in self.bound[node.id] if q}
            return {DEFAULT_NAMES.get(node.id, node.id)}
        if isinstance(node, ast.Attribute):
            return {f"{q}.{node.attr}" for q in self.resolve(node.value)}
        if isinstance(node, ast.Call):
            function, args = self.resolve(node.func), node.args
            first = string(args[0]) if args else None
            second = string(args[1]) if len(args) > 1 else None
            if function & {"getattr", "builtins.getattr"} and second:
                return {f"{q}.{second}" for q in self.resolve(args[0])}
            if function & {"__import__", "builtins.__import__", "importlib.import_module"} and first:
                return {first}
            if function & {"staticmethod", "classmethod"} and args:
                return self.resolve(args[0])
        if isinstance(node, ast.Subscript) and "sys.modules" in self.resolve(node.value):
            key = string(node.slice)
            return {key} if key else set()
        return set()

    def bind(self, name, meanings):
        """Add ``meanings`` (none: a local value) to ``name``; True if it gained one."""
        known = self.bound.setdefault(name, set())
        new = sorted((meanings or {""}) - known)[:max(0, MAX_QUALIFIED - len(known))]
        known.update(new)
        return bool(new)

    def bindings(self, tree):
        """(name, meanings) of each binding in ``tree``."""
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield (alias.asname, {alias.name}) if alias.asname else \
                        (alias.name.split(".")[0], {alias.name.split(".")[0]})
            elif isinstance(node, ast.ImportFrom) and not node.level:
                for alias in node.names:
                    if alias.name != "*":
                        yield alias.asname or alias.name, {f"{node.module}.{alias.name}"}
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    yield from self._paired(target, node.value)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield node.name, set()
            elif isinstance(node, ast.arg):
                yield node.arg, set()

    def _paired(self, target, value):
        if isinstance(target, ast.Name):
            yield target.id, self.resolve(value)
        elif isinstance(target, (ast.Tuple, ast.List)):
            values = value.elts if isinstance(value, (ast.Tuple, ast.List)) and \
                len(value.elts) == len(target.elts) else [None] * len(target.elts)
            for part, meaning in zip(target.elts, values):
                yield from self._paired(part, meaning) if meaning is not None else \
                    ((n.id, set()) for n in ast.walk(part) if isinstance(n, ast.Name))

    @classmethod
    def of(cls, trees):
        names = cls()
        for _ in range(3):  # an alias of an alias defined later: a few rounds reach the meaning
            changed = False
            for tree in trees:
                for name, meanings in list(names.bindings(tree)):
                    changed |= names.bind(name, meanings)
            if not changed:
                break
        return names


def referenced(node):
    """What a function (or expression) may call by name: the names it reads that it does not
    bind itself (parameters and local variables are not the answers' functions) and the
    attributes it calls (``self.helper(...)``, not ``ctx.gradient``)."""
    local = {n.arg for n in ast.walk(node) if isinstance(n, ast.arg)} | {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    called = {n.func.attr for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    return (names - local) | called


def derivative_code(trees):
    """ids of every node of the answers' derivative code (see the module docstring)."""
    functions, seeds = {}, []
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.setdefault(node.name, []).append(node)
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        functions.setdefault(target.id, []).append(node.value)
    designated = set()
    for tree in trees:
        for node in ast.walk(tree):
            for slot in _function_slots(node):
                seeds += [n for n in ast.walk(slot) if isinstance(n, ast.Lambda)]
                designated |= referenced(slot)
            if isinstance(node, ast.ClassDef) and any(
                    getattr(member, "name", None) in FUNCTION_SLOTS or any(
                        isinstance(t, ast.Name) and t.id in FUNCTION_SLOTS for t in getattr(member, "targets", []))
                    for member in node.body):
                seeds += [m for m in node.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for name in DERIVATIVE_NAMES | designated:
        seeds += functions.get(name, [])
    inside, done = set(), set()
    while seeds:
        seed = seeds.pop()
        if id(seed) in done:
            continue
        done.add(id(seed))
        inside.update(id(n) for n in ast.walk(seed))
        for name in referenced(seed):
            seeds += functions.get(name, [])
    return inside


def _function_slots(node):
    """The expressions ``node`` makes a Function's backward (vjp, jvp), if any."""
    if isinstance(node, ast.Assign):
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id in FUNCTION_SLOTS or \
                    isinstance(target, ast.Attribute) and target.attr in FUNCTION_SLOTS:
                yield node.value
    elif isinstance(node, ast.Call):
        if dotted(node.func) == "setattr" and len(node.args) == 3 and string(node.args[1]) in FUNCTION_SLOTS:
            yield node.args[2]
        for keyword in node.keywords:
            if keyword.arg in FUNCTION_SLOTS:
                yield keyword.value
    elif isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values):
            if key is not None and string(key) in FUNCTION_SLOTS:
                yield value
