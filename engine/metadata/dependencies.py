"""Order apps so that every app loads after the apps it depends on.

Missing dependencies, duplicate app names and cycles are issues pointing into
app.json; the apps involved still load (in name order, after the others) so the
rest of their mistakes are reported in the same pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from engine.errors import MetadataIssue
from engine.metadata.names import CUSTOM_APP
from engine.metadata.package import Package


@dataclass(frozen=True)
class AppOrder:
    """Packages in load order, and each app's transitive dependencies."""

    packages: tuple[Package, ...]
    ancestors: Mapping[str, frozenset[str]]


def order_packages(packages: Sequence[Package]) -> tuple[AppOrder, list[MetadataIssue]]:
    """Topologically sort ``packages`` (ties by name) and report dependency mistakes."""
    issues: list[MetadataIssue] = []
    by_name: dict[str, Package] = {}
    for package in packages:
        if package.name == CUSTOM_APP:
            issues.append(MetadataIssue(package.manifest_file, "/name",
                                        f"the app name {CUSTOM_APP!r} is reserved for the "
                                        "admin's customisations"))
        elif package.name in by_name:
            issues.append(MetadataIssue(package.manifest_file, "/name",
                                        f"app {package.name!r} is also loaded from "
                                        f"{by_name[package.name].path}"))
            continue
        by_name[package.name] = package

    deps: dict[str, list[str]] = {}
    for name, package in by_name.items():
        deps[name] = []
        for i, dep in enumerate(package.depends_on):
            if dep == name:
                issues.append(MetadataIssue(package.manifest_file, f"/depends_on/{i}",
                                            f"app {name!r} depends on itself"))
            elif dep not in by_name:
                issues.append(MetadataIssue(package.manifest_file, f"/depends_on/{i}",
                                            f"depends on app {dep!r}, which is not loaded "
                                            "(pass its folder too)"))
            else:
                deps[name].append(dep)

    ordered: list[str] = []
    remaining = dict(deps)
    while remaining:
        ready = sorted(n for n, ds in remaining.items() if all(d in ordered for d in ds))
        if not ready:
            break
        ordered.append(ready[0])
        del remaining[ready[0]]
    settled = set(ordered)
    for name in sorted(remaining):
        cycle = _cycle_from(name, deps, settled)
        if cycle:
            package = by_name[name]
            index = package.depends_on.index(cycle[1])
            issues.append(MetadataIssue(package.manifest_file, f"/depends_on/{index}",
                                        "dependency cycle: " + " -> ".join(cycle)))
        ordered.append(name)

    ancestors: dict[str, frozenset[str]] = {}
    for name in by_name:
        seen: set[str] = set()
        stack = list(deps[name])
        while stack:
            dep = stack.pop()
            if dep not in seen:
                seen.add(dep)
                stack.extend(deps.get(dep, ()))
        seen.discard(name)
        ancestors[name] = frozenset(seen)
    return AppOrder(tuple(by_name[n] for n in ordered), ancestors), issues


def _cycle_from(start: str, deps: Mapping[str, list[str]], done: set[str]) -> list[str]:
    """A dependency path from ``start`` back to itself, or [] when it only waits on a cycle."""
    def walk(node: str, path: list[str]) -> list[str]:
        for dep in deps.get(node, ()):
            if dep in done:
                continue
            if dep == start:
                return [*path, dep]
            if dep not in path:
                found = walk(dep, [*path, dep])
                if found:
                    return found
        return []

    return walk(start, [start])
