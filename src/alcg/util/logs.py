"""Per-job logging for the rule adapters in ``scripts/``."""
from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def job_log(path: str | Path | None) -> Iterator[logging.Logger]:
    """Send logging, stdout and stderr (tqdm progress bars) of one job to ``path``."""
    if not path:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        yield logging.getLogger("alcg")
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", buffering=1) as fh:
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = fh
        try:
            yield logging.getLogger("alcg")
        except Exception:
            logging.getLogger("alcg").exception("job failed")
            raise
        finally:
            sys.stdout, sys.stderr = old_out, old_err
            root.removeHandler(handler)
