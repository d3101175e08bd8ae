"""A local HubSpot emulator for tests, benchmarks and demos (loopback only)."""

from .portal import AssociationLabel, Portal, PropertyDef, default_portal
from .server import Fault, Received, Sandbox, SandboxConfig

__all__ = [
    "AssociationLabel",
    "Fault",
    "Portal",
    "PropertyDef",
    "Received",
    "Sandbox",
    "SandboxConfig",
    "default_portal",
]
