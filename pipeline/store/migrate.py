"""Moving a site's keys from the layout before hash tags (``P:S:...``) to today's (``P:{S}:...``).

Keys carry the site in a Redis Cluster hash tag (``pipeline.keys``). A site written by an older crosscam has
its keys under ``P:S:``, where nothing reads them now; ``migrate_keys`` renames each to its new name on the
single Redis server that holds them (RENAME keeps a key's value, its time to live and a stream's consumer
groups). Run it with the site's workers and matcher stopped, before moving a site to a Redis Cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.bus.connect import Client, is_cluster
from pipeline.keys import Keys, text


class MigrateError(Exception):
    """The keys cannot be migrated where they are."""


@dataclass
class Migration:
    """What ``migrate_keys`` did: keys renamed, and old keys left alone because their new name is taken."""

    site: str
    renamed: int = 0
    conflicts: list[str] = field(default_factory=list)


def _glob(s: str) -> str:
    """``s`` with the characters SCAN's pattern treats specially escaped."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in s)


def migrate_keys(client: Client, keys: Keys) -> Migration:
    """Rename every ``P:S:...`` key of ``keys.site`` to ``P:{S}:...``. A key whose new name exists already is
    left as it is and listed in ``conflicts`` (nothing is overwritten); running it again renames nothing more."""
    if is_cluster(client):
        raise MigrateError(
            "migrate the keys on the single Redis server that holds them (before hash tags, a site could not "
            "live on a Redis Cluster), then move them to the cluster"
        )
    old = keys.legacy_prefix
    new = keys.pattern[:-1]  # P:{S}:
    done = Migration(keys.site)
    for raw in list(client.scan_iter(_glob(old) + "*", count=1000)):
        name = text(raw)
        if client.renamenx(name, new + name[len(old) :]):
            done.renamed += 1
        else:
            done.conflicts.append(name)
    return done
