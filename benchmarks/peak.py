"""Run pytest in this process and write its peak RSS (MiB) to ./peak.txt."""

import resource
import sys

import pytest

rc = pytest.main(sys.argv[3:] if sys.argv[1:2] == ["-m"] else sys.argv[1:])
with open("peak.txt", "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
sys.exit(0 if rc in (0, 1) else rc)
