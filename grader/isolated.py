"""One grading from a payload, `python -m grader.isolated PAYLOAD.json` ({"workspace": ...,
"options": GradeOptions.to_payload()}); never run by hand.

Started by `grader.pipeline.run_grade` through `grader.sandbox.run_in_grading_namespace` for
the grading inside its own namespaces: it brings up the namespace's private loopback, puts
the work folder on a size-limited tmpfs, then runs the same grading as outside. `grade batch`
starts one per workspace (no namespace yet: that grading enters its own, as `grade` does).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(payload_path: str) -> int:
    from grader.cli import Progress
    from grader.options import GradeOptions
    from grader.pipeline import run_grade
    from grader.sandbox import bring_loopback_up

    payload = json.loads(Path(payload_path).read_text(encoding="utf-8"))
    options = GradeOptions.from_payload(payload["options"])
    if options.private_network:
        bring_loopback_up()
    return run_grade(Path(payload["workspace"]), options, Progress(options.quiet))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
