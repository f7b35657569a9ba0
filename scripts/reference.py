"""Write the scenario-format reference generated from the schema.

    python scripts/reference.py > docs/reference.md

tests/test_reference.py checks that the committed file is current.
"""

import sys

from negosim.scenario.reference import markdown

if __name__ == "__main__":
    sys.stdout.write(markdown())
