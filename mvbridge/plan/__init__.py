"""``mvbridge plan``: from a requirement list that does not resolve to the fewest envs that do.

Internal, HOST side (Python 3.10+). One module per step, in pipeline order:

- ``inputs``     the requirement list: arguments, ``-r`` files, ``[project].dependencies``
- ``resolvers``  what a real resolver says about one set (``uv pip compile``; pip as fallback)
- ``answers``    those answers, memoised in the run and cached on disk
- ``search``     the partition: conflicts found with the resolver, the fewest groups, verified
- ``explain``    each conflict in a line, shortened from the resolver's own message
- ``planner``    the steps above put together: a ``Plan``
- ``report``     a ``Plan`` as a table or as JSON
- ``write``      a ``Plan`` written into ``mvbridge.toml`` / ``[tool.mvbridge]`` (tomlkit)
"""
