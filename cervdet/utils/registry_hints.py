"""Name the closest registered types when a config has a typo in a type."""
import contextlib
import difflib
import re
from typing import Iterator, List, Set

_NOT_IN_REGISTRY = re.compile(
    r"(?P<name>[\w.]+) is not in the (?:(?P<scope>[\w]+)::)?(?P<reg>[\w ]+?) "
    r'registry')


def _registries(scope: str, name: str) -> List:
    """Every loaded Registry object called ``name`` (of ``scope`` first)."""
    import importlib
    regs = []
    for mod_name in ('mmdet.registry', 'mmpretrain.registry',
                     'mmengine.registry'):
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:  # pragma: no cover - optional library
            continue
        for obj in vars(mod).values():
            if type(obj).__name__ == 'Registry' and \
                    getattr(obj, 'name', None) == name:
                regs.append(obj)
    regs.sort(key=lambda r: r.scope != scope)
    return regs


def registered_names(scope: str, name: str) -> Set[str]:
    """Type names a config can use in registry ``scope::name`` (its own,
    its parents', and other scopes' with their ``scope.`` prefix)."""
    names: Set[str] = set()
    for reg in _registries(scope, name):
        prefix = '' if reg.scope in (scope, 'mmengine') else f'{reg.scope}.'
        names.update(prefix + k for k in reg.module_dict)
    return names


def suggest(message: str, n: int = 3) -> str:
    """Suggestions for a "X is not in the scope::name registry" message
    ('' when it is not one or nothing is close)."""
    m = _NOT_IN_REGISTRY.search(message)
    if not m:
        return ''
    typo, scope, reg = m.group('name'), m.group('scope') or '', \
        m.group('reg').strip()
    names = registered_names(scope, reg)
    by_lower = {k.lower(): k for k in names}
    close = difflib.get_close_matches(typo.lower(), list(by_lower), n=n,
                                      cutoff=0.6)
    if not close:
        return (f' Type {typo!r} is not registered in {scope or "the"}::'
                f'{reg}, and no registered name is close to it; check the '
                'spelling and custom_imports.')
    return (f' Did you mean {" or ".join(repr(by_lower[c]) for c in close)}?'
            f' (type {typo!r} of registry {scope + "::" if scope else ""}'
            f'{reg})')


class UnknownTypeError(KeyError):
    """A config names a type no registry holds (with suggestions)."""

    def __str__(self) -> str:  # no quotes around the message
        return str(self.args[0]) if self.args else ''


@contextlib.contextmanager
def registry_hints() -> Iterator[None]:
    """Re-raise MMEngine's "not in the registry" KeyError with the closest
    registered names."""
    try:
        yield
    except KeyError as e:
        msg = str(e.args[0]) if e.args else str(e)
        hint = suggest(msg)
        if not hint:
            raise
        short = msg.split(' Please check whether')[0]
        raise UnknownTypeError(short + '.' + hint) from e


__all__ = ['registry_hints', 'suggest', 'registered_names',
           'UnknownTypeError']
