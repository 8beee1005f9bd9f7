"""Containers that register the modules they hold: ModuleList and ModuleDict.

A plain Python list or dict of layers assigned to a Module is an ordinary attribute: its
layers' parameters are not in parameters() (so no optimizer sees them), not in
state_dict(), and not moved by to(). These two hold their modules as registered
submodules instead, under PyTorch's keys: a ModuleList's modules are named "0", "1", ...
(so state_dict keys read "blocks.0.weight"), a ModuleDict's by their keys. Neither has a
forward of its own; the owning module decides how to call what they hold.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Mapping

from .module import Module

__all__ = ["ModuleDict", "ModuleList"]


def _check_module(module, container: str) -> Module:
    if not isinstance(module, Module):
        raise TypeError(f"{container}: expected a Module, got {type(module).__name__}")
    return module


class ModuleList(Module):
    """Modules in a list: indexable (negative indices and slices too), iterable, has len;
    append, extend, insert, pop, del, `+` and `+=` as on a list. After an insertion or a
    deletion the modules are renumbered 0, 1, ..., as PyTorch does."""

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _key(self, index) -> str:
        """The registry key of a (possibly negative) int index."""
        index = operator.index(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"ModuleList index {index} out of range for length {len(self)}")
        return str(index % len(self))

    def _renumber(self, modules: list) -> None:
        self._modules.clear()
        self._modules.update((str(i), module) for i, module in enumerate(modules))

    def __getitem__(self, index) -> Module | ModuleList:
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return self._modules[self._key(index)]

    def __setitem__(self, index, module: Module) -> None:
        self.add_module(self._key(index), _check_module(module, "ModuleList"))

    def __delitem__(self, index) -> None:
        modules = list(self._modules.values())
        if isinstance(index, slice):
            del modules[index]
        else:
            del modules[int(self._key(index))]
        self._renumber(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList(list(self) + list(other))

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), _check_module(module, "ModuleList.append"))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        if not isinstance(modules, Iterable):
            raise TypeError(
                f"ModuleList.extend: expected an iterable of Modules, got "
                f"{type(modules).__name__}"
            )
        for module in list(modules):
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Insert before index, as list.insert (an index past either end clamps to it)."""
        modules = list(self._modules.values())
        modules.insert(operator.index(index), _check_module(module, "ModuleList.insert"))
        self._renumber(modules)

    def pop(self, index: int = -1) -> Module:
        module = self[index]
        del self[index]
        return module

    def __repr__(self) -> str:
        # PyTorch's form: a run of identical modules prints once, as "(0-2): 3 x Linear(...)"
        reprs = [repr(module) for module in self]
        if not reprs:
            return "ModuleList()"
        runs: list[list] = []  # [first index, last index, repr]
        for i, text in enumerate(reprs):
            if runs and runs[-1][2] == text:
                runs[-1][1] = i
            else:
                runs.append([i, i, text])
        lines = []
        for first, last, text in runs:
            text = text.replace("\n", "\n  ")
            if first == last:
                lines.append(f"({first}): {text}")
            else:
                lines.append(f"({first}-{last}): {last - first + 1} x {text}")
        return "ModuleList(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(Module):
    """Modules by name, in insertion order: `d[key]`, `d[key] = module`, `del d[key]`,
    `key in d`, len, iteration over the keys, keys(), values(), items(), update(), pop(),
    clear(), as on a dict."""

    def __init__(self, modules: Mapping[str, Module] | Iterable | None = None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        try:
            return self._modules[key]
        except KeyError:
            raise KeyError(f"ModuleDict has no module {key!r}") from None

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str):
            raise TypeError(f"ModuleDict: keys must be strings, got {type(key).__name__}")
        if "." in key or key == "":
            raise KeyError(f"ModuleDict: key {key!r} must be a non-empty name without '.'")
        self.add_module(key, _check_module(module, "ModuleDict"))  # a replaced key keeps its place

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: str) -> bool:
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def clear(self) -> None:
        self._modules.clear()

    def pop(self, key: str) -> Module:
        module = self[key]
        del self[key]
        return module

    def update(self, modules) -> None:
        """Add or replace modules from a mapping (a ModuleDict too) or from (key, module)
        pairs, in their order."""
        if isinstance(modules, (Mapping, ModuleDict)):
            pairs = list(modules.items())
        elif isinstance(modules, Iterable):
            pairs = []
            for j, pair in enumerate(modules):
                if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                    raise TypeError(
                        f"ModuleDict.update: element {j} should be a (key, module) pair, "
                        f"got {type(pair).__name__}"
                    )
                pairs.append(tuple(pair))
        else:
            raise TypeError(
                f"ModuleDict.update: expected a mapping or an iterable of (key, module) "
                f"pairs, got {type(modules).__name__}"
            )
        for key, module in pairs:
            self[key] = module
