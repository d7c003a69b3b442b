"""The wiring tier: the use cases that the API, the CLI (and later cameras, video and events) call.

``Runtime.build(settings)`` creates the store, the engines, one live index per collection
and the scheduler; the use cases (``recognition``, ``enrolment``, ``people``, ``archives``,
``keys``) are its attributes and return typed results. Adapters only parse, call and render.
"""
