"""``kyoten-get``: ``kyoten get`` as the Zabbix agent's UserParameters run it, without ``site``.

In UserParameter mode every poll starts a new Python process, so the interpreter's own start-up
is part of every poll's cost. The ordinary one runs ``site`` (the environment's ``.pth`` files,
and an import hook in an editable install) and pip's console-script wrapper imports ``re``
before kyoten's code starts; for one ``kyoten get`` that was about a third of its CPU. This file
is installed as ``bin/kyoten-get`` of kyoten's virtual environment behind a
``#!<venv>/bin/python -IS`` line (:func:`kyoten.agent.export.userparameters.render_launcher`;
pip drops options from the ``#!`` lines it writes, so the package's build writes it):

* ``-S``: no ``site``. This file puts the environment's site-packages on ``sys.path`` itself,
  found from the interpreter's path (``<venv>/bin/python`` → ``<venv>/lib/pythonX.Y/
  site-packages``): without ``site``, ``sys.prefix`` is the base Python's, not the venv's.
  Where kyoten is not importable from there (an editable install, a system-wide one), ``site``
  runs after all and the start-up is the usual one: slower, never wrong.
* ``-I``: isolated, as a command the agent runs as its own user should be: no ``PYTHON*``
  variables, no user site-packages, not the script's folder on ``sys.path``.

It takes the arguments of ``kyoten get`` and answers exactly as it does (same output, same exit
code); :func:`kyoten.agent.export.userparameters.render_userparameters` knows it by its name.
"""

import sys


def site_packages(executable: str) -> str:
    """The site-packages of the virtual environment whose interpreter is ``executable``."""
    venv = executable.rpartition("/")[0].rpartition("/")[0]
    version = sys.version_info
    return f"{venv}/lib/python{version[0]}.{version[1]}/site-packages"


def main() -> int:
    if not sys.flags.no_site:  # run with the usual start-up: nothing to add
        from kyoten.agent.commands import cmd_get
    else:
        sys.path.append(site_packages(sys.executable))
        try:
            from kyoten.agent.commands import cmd_get
        except ModuleNotFoundError:  # not installed there: what site would have found
            import site

            site.main()
            from kyoten.agent.commands import cmd_get
    return cmd_get(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
