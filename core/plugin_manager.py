"""Plugin discovery with pluggy: entry points of group ``igkit``, plus explicit registration."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata

import pluggy

from igkit import hookspecs
from igkit.domain import Domain
from igkit.errors import IGInputError, IgkitWarning


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str
    source: str


@lru_cache(maxsize=1)
def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with every installed ``igkit`` entry point loaded."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for entry_point in metadata.entry_points(group=hookspecs.PROJECT):
        if pm.get_plugin(entry_point.name) is not None or pm.is_blocked(entry_point.name):
            continue
        try:  # one broken plugin must not take igkit (and the other plugins) down with it
            plugin = entry_point.load()
        except Exception as exc:  # noqa: BLE001
            warnings.warn(f"igkit plugin {entry_point.name!r} ({entry_point.value}) failed to load and is "
                          f"skipped: {type(exc).__name__}: {exc}", IgkitWarning, stacklevel=2)
            continue
        pm.register(plugin, name=entry_point.name)
        pm._plugin_distinfo.append((plugin, entry_point.dist))  # for list_plugin_distinfo()
    return pm


def register(plugin: object, name: str | None = None) -> None:
    """Register a plugin object or module by hand (for code that is not installed)."""
    pm = get_plugin_manager()
    if name is not None and pm.get_plugin(name) is not None:
        pm.unregister(name=name)
    if pm.is_registered(plugin):
        raise IGInputError(f"this plugin is already registered as {pm.get_name(plugin)!r}; "
                           f"unregister that name first")
    pm.register(plugin, name=name)


def unregister(name: str) -> None:
    """Remove a plugin registered with :func:`register`."""
    pm = get_plugin_manager()
    if pm.get_plugin(name) is not None:
        pm.unregister(name=name)


def list_plugins() -> list[PluginInfo]:
    """Every loaded plugin with its version and where it came from."""
    pm = get_plugin_manager()
    from_dist = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        dist = from_dist.get(id(plugin))
        if dist is not None:
            infos.append(PluginInfo(name, dist.version, f"entry point of {dist.project_name}"))
        else:
            infos.append(PluginInfo(name, str(getattr(plugin, "__version__", "unknown")),
                                    "registered at run time"))
    return sorted(infos, key=lambda info: info.name)


def domains() -> dict[str, Domain]:
    """All domains offered by loaded plugins, by name."""
    found: dict[str, Domain] = {}
    for batch in get_plugin_manager().hook.igkit_domains():
        for domain in batch or []:
            found[domain.name] = domain
    return found


def get_domain(name: str) -> Domain:
    """The domain called ``name``, or an error listing the ones that exist."""
    available = domains()
    if name not in available:
        raise IGInputError(f"no domain named {name!r}; installed domains: "
                           f"{', '.join(sorted(available)) or 'none'}")
    return available[name]

