#!/usr/bin/env bash
# Sets up .venv-latest, the newest stack users run (requirements-latest.txt: pandas 3,
# numpy 2.4, scikit-learn 1.9, pyspark 4, MLflow), with the pyfunc of this tree in it.
# Safe to run again. Run scripts/setup.sh first: pyfunc's extension (pyfunc._core) and
# CLI are the ones it built for .venv. Both venvs use the same interpreter, so the
# extension's ABI is the same and nothing is rebuilt; neither links numpy or pandas.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x .venv/bin/pyfunc ]]; then
  echo "setup-latest: .venv has no pyfunc build; run scripts/setup.sh first" >&2
  exit 1
fi
# The interpreter .venv was made from (not a PYTHON of the caller's): the same ABI.
BASE_PYTHON=$(.venv/bin/python -c 'import sys; print(sys._base_executable)')
if [[ ! -x .venv-latest/bin/python ]]; then
  echo "setup-latest: creating .venv-latest"
  "$BASE_PYTHON" -m venv .venv-latest
fi
same_abi='import sys, sysconfig; print(sys.version_info[:3], sysconfig.get_config_var("EXT_SUFFIX"))'
if [[ $(.venv/bin/python -c "$same_abi") != $(.venv-latest/bin/python -c "$same_abi") ]]; then
  echo "setup-latest: .venv-latest runs another Python than .venv; remove it and run again" >&2
  exit 1
fi
stamp=.venv-latest/.requirements-installed
if [[ ! -f $stamp ]] || ! cmp -s requirements-latest.txt "$stamp"; then
  echo "setup-latest: installing Python packages (requirements-latest.txt)"
  .venv-latest/bin/python -m pip install -q --upgrade pip
  .venv-latest/bin/python -m pip install -q -r requirements-latest.txt
  cp requirements-latest.txt "$stamp"
fi

# pyfunc: its Python files from python/pyfunc (like the editable install in .venv), the
# extension and the CLI copied from .venv (a copy, so that the CLI's "python beside it"
# is .venv-latest's).
site=$(.venv-latest/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
core=$(.venv/bin/python -c 'import pyfunc._core as c; print(c.__file__)')
mkdir -p "$site/_pyfunc_latest_core"
cmp -s "$core" "$site/_pyfunc_latest_core/$(basename "$core")" || cp "$core" "$site/_pyfunc_latest_core/"
cmp -s .venv/bin/pyfunc .venv-latest/bin/pyfunc || cp .venv/bin/pyfunc .venv-latest/bin/pyfunc
cat > "$site/_pyfunc_latest.py" <<EOF
"""Makes 'import pyfunc' load $PWD/python/pyfunc with the extension in
$site/_pyfunc_latest_core (written by scripts/setup-latest.sh)."""
import importlib.util
import sys

_SOURCE = "$PWD/python/pyfunc"
_CORE = "$site/_pyfunc_latest_core"


class _PyfuncFinder:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "pyfunc":
            return None
        return importlib.util.spec_from_file_location(
            name, _SOURCE + "/__init__.py", submodule_search_locations=[_SOURCE, _CORE])


sys.meta_path.insert(0, _PyfuncFinder)
EOF
echo "import _pyfunc_latest" > "$site/_pyfunc_latest.pth"
.venv-latest/bin/python -c "import pyfunc, pyfunc._core" || { echo "setup-latest: pyfunc does not import in .venv-latest" >&2; exit 1; }
