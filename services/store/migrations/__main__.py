"""`python -m services.store.migrations "what changed"` (make migration): see services/store/schema.py."""

import sys

from services.store.schema import new_revision

if len(sys.argv) != 2 or not sys.argv[1].strip():
    sys.exit('usage: make migration m="what changed"')
path = new_revision(sys.argv[1])
sys.exit("services/store/tables.py matches the newest revision: nothing to write" if path is None else 0)
