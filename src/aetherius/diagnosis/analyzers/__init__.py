"""One analyzer per kind. Each module has ``KIND`` and ``check(obj, ctx) -> list[Finding]``; the
engine calls ``check`` once per object of that kind and turns a malformed object into a warning."""
