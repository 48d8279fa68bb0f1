"""LICENSE holds the Apache License 2.0 that pyproject.toml declares, as the Apache Software Foundation
publishes it (https://www.apache.org/licenses/LICENSE-2.0.txt, whose MD5 is the one below)."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_license_is_the_apache_2_0_text_pyproject_declares():
    text = (ROOT / "LICENSE").read_bytes()
    assert hashlib.md5(text).hexdigest() == "3b83ef96387f14655fc854ddc3c6bd57"
    assert b"Apache License\n                           Version 2.0, January 2004" in text
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["license"]
    assert declared == {"text": "Apache-2.0"}
