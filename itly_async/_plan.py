"""What a generated package tells the runtime about its tracking plan.

A generated package builds one ``Plan`` at import time (cheap: no compilation, its
validators are precompiled functions) and passes it to ``Client.load(options, plan=...)``.
Runtime-only users may pass schemas as plain dicts instead; they are compiled at load.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

from ._config import (
    AmplitudeOptions,
    CustomOptions,
    DestinationConfig,
    Environment,
    SegmentOptions,
)
from ._exceptions import ConfigurationError

Vendor = Literal["amplitude", "segment", "custom"]


@attrs.frozen(kw_only=True)
class Schema:
    """One item's JSON Schema, as a dict, a precompiled validator, or both.

    ``validate`` is a fastjsonschema function that raises on the first error; ``schema``
    lets the runtime explain *every* failing property once a call has failed; ``check``
    is an optional sound pre-check (``_fastcheck.check_source``) that proves the common
    case valid in a fraction of the time, deferring to ``validate`` when it cannot.
    ``check_ready`` says that ``check`` also proves the data JSON as it is (what
    ``check_source`` writes): a call whose properties pass it skips their conversion.
    Generated packages give all of them, precompiled.
    """

    schema: Mapping[str, Any] | None = None
    validate: Callable[[Any], Any] | None = None
    check: Callable[[Any], bool] | None = None
    check_ready: bool = False

    def __attrs_post_init__(self) -> None:
        if self.schema is None and self.validate is None:
            raise ValueError("Schema needs a schema dict, a validate function, or both")


@attrs.frozen(kw_only=True)
class PlanDestination:
    """A destination of the plan: its vendor and its key per environment."""

    vendor: Vendor
    keys: Mapping[str, str] = attrs.field(factory=dict, repr=False)

    def key_for(self, environment: Environment) -> str | None:
        return self.keys.get(environment.value) or None


@attrs.frozen(kw_only=True)
class Plan:
    """The tracking plan, as the runtime needs it.

    Args:
        version: the plan's version, sent as plan metadata.
        source: the source this package was generated for.
        branch, version_id: optional plan metadata.
        destinations: the source's destinations, by plan key.
        context, identify, group: schemas of those items, if the plan has them.
        events: event name -> schema. Events outside it are sent unvalidated by ``track``.
    """

    version: str = ""
    source: str = ""
    branch: str = ""
    version_id: str = ""
    destinations: Mapping[str, PlanDestination] = attrs.field(factory=dict)
    context: Schema | None = None
    identify: Schema | None = None
    group: Schema | None = None
    events: Mapping[str, Schema] = attrs.field(factory=dict)


def resolve_destinations(
    plan: Plan,
    overrides: Mapping[str, DestinationConfig] | None,
    environment: Environment,
) -> dict[str, DestinationConfig]:
    """Merge the plan's destinations (with their keys for ``environment``) and overrides.

    An override of the same name wins field by field where it sets a key; a name only in
    ``overrides`` is added as is. Raises ``ConfigurationError`` naming the destination
    (never the key) when a destination cannot work.
    """
    overrides = dict(overrides or {})
    resolved: dict[str, DestinationConfig] = {}
    for name, dest in plan.destinations.items():
        given = overrides.pop(name, None)
        key = dest.key_for(environment)
        if dest.vendor == "amplitude":
            if given is not None and not isinstance(given, AmplitudeOptions):
                raise ConfigurationError(
                    f"destinations.{name} is an Amplitude destination in the plan; "
                    f"pass AmplitudeOptions, not {type(given).__name__}"
                )
            amp = given or AmplitudeOptions()
            if amp.api_key is None and key is not None:
                amp = attrs.evolve(amp, api_key=key)
            resolved[name] = amp
        elif dest.vendor == "segment":
            if given is not None and not isinstance(given, SegmentOptions):
                raise ConfigurationError(
                    f"destinations.{name} is a Segment destination in the plan; "
                    f"pass SegmentOptions, not {type(given).__name__}"
                )
            seg = given or SegmentOptions()
            if seg.write_key is None and key is not None:
                seg = attrs.evolve(seg, write_key=key)
            resolved[name] = seg
        else:
            if not isinstance(given, CustomOptions):
                raise ConfigurationError(
                    f"destinations.{name} is a custom destination: pass "
                    f"DestinationsOptions({name}=CustomOptions(adapter=YourAdapter()))"
                )
            resolved[name] = given
    resolved.update(overrides)
    for name, cfg in resolved.items():
        if isinstance(cfg, AmplitudeOptions) and cfg.api_key is None:
            raise ConfigurationError(
                f"destinations.{name}.api_key is not set for environment "
                f"{environment.value!r}: put it in the plan or pass AmplitudeOptions(api_key=...)"
            )
        if isinstance(cfg, SegmentOptions) and cfg.write_key is None:
            raise ConfigurationError(
                f"destinations.{name}.write_key is not set for environment "
                f"{environment.value!r}: put it in the plan or pass SegmentOptions(write_key=...)"
            )
    return resolved
