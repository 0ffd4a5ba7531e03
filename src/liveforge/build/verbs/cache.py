"""``liveforge cache stats|prune|push``: the build cache's counts and sizes, pruning the local
store, and uploading what this workspace built to the shared store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from liveforge.build.stepcache import StepCache, cache_settings, parse_size
from liveforge.build.workspace import Workspace
from liveforge.util.blobstore import LocalStore
from liveforge.util.errors import InputError, UsageError
from liveforge.util.events import Reporter


def cache_verb(root: Path, action: str, reporter: Reporter, mode: str | None,
               max_size: str | None = None, offline: bool = False,
               json_mode: bool = False) -> int:
    ws = _workspace(root, mode, offline, needed=action == "push")
    settings = cache_settings(ws, mode)
    local = LocalStore(settings.local)
    if max_size is not None and action != "prune":
        raise UsageError("--max-size goes with cache prune")
    if action == "stats":
        stats = stats_of(local, settings.url)
        if json_mode:
            print(json.dumps({"event": "cache", **stats}, sort_keys=True))
        else:
            print(format_stats(stats))
        return 0
    if action == "prune":
        limit = parse_size(max_size, "--max-size") if max_size is not None else \
            settings.max_size
        removed, freed = local.prune(limit, leftovers=True)
        count, size = local.usage()
        reporter.info(f"pruned {removed} entries ({_size(freed)}); the local store holds "
                      f"{count} entries ({_size(size)}, limit {_size(limit)})")
        return 0
    assert ws is not None
    return push(ws, reporter, settings.url)  # the workspace's settings


def _workspace(root: Path, mode: str | None, offline: bool, needed: bool
               ) -> Workspace | None:
    """The workspace at ``root``; None outside one when the verb can do without (stats and
    prune use the environment's settings then)."""
    from liveforge.build.kinds import known_kinds

    if not needed and not (root / "platform.toml").is_file():
        return None
    return Workspace(root, known_kinds(), offline=offline, cache_mode=mode)


def push(ws: Workspace, reporter: Reporter, url: str) -> int:
    """Upload the local entry of every up-to-date step to the shared store."""
    from liveforge.build.graph import plan

    if not url:
        raise InputError("no shared cache: set CACHE_URL in configure-build or the "
                         "environment")
    settings = cache_settings(ws)
    if settings.mode != "on":
        raise UsageError(f"cache push writes: not with the cache {settings.mode} "
                         "(--no-cache, --cache-readonly, CACHE_MODE)")
    cache = StepCache(ws, settings, reporter)
    if cache.shared is None:
        raise UsageError("cache push needs the network: not with --offline")
    if not cache.shared.writable:
        raise InputError(f"no credentials to write to {url}: set LIVEFORGE_CACHE_AUTH "
                         "(user:password) or a netrc entry for its host")
    p = plan(ws)
    keys = cache.keys(p)
    pushed = skipped = 0
    for name in p.order:
        step = p.steps[name]
        if p.reasons[name]:
            reporter.info(f"{name}: not built (stale): nothing to push")
            skipped += 1
        elif cache.local.record(keys[name]) is None:
            reporter.info(f"{name}: not in the local cache (not cacheable, or pruned)")
            skipped += 1
        elif cache.push(step, keys[name]):
            pushed += 1
        else:
            skipped += 1
    reporter.info(f"pushed {pushed} entries to {url}; {skipped} not pushed")
    return 0


def stats_of(local: LocalStore, url: str) -> dict[str, Any]:
    count, size = local.usage()
    return {"local": {"path": str(local.root), "entries": count, "bytes": size},
            "shared": {"url": url or None}, **local.stats()}


def format_stats(stats: dict[str, Any]) -> str:
    local, shared = stats["local"], stats["shared"]
    return "\n".join([
        f"local store:  {local['path']}: {local['entries']} entries, {_size(local['bytes'])}",
        f"shared store: {shared['url'] or '(none: CACHE_URL is not set)'}",
        f"hits:         {stats['local_hits']} local, {stats['shared_hits']} shared",
        f"misses:       {stats['misses']}",
        f"stored:       {stats['stored']} local, {stats['pushed']} pushed",
        f"transferred:  {_size(stats['bytes_downloaded'])} down, "
        f"{_size(stats['bytes_uploaded'])} up",
    ])


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"
