"""Test kinds beyond single-line asserts: `stdio` (stdio.py, its child side stdio_child.py,
compiled languages through builds.py) and `call` (call.py); dispatch.py picks one.

Nothing is imported here: the sandboxed child imports stdio_child alone, and must not pull
the trusted side (pydantic models, the supervisors) into every zygote.
"""
