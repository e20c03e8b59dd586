"""A workbook run through the steps the Prefect flow wires, in this process, without Prefect.

`run/steps.py` holds every stage as a plain function (`prepare_run`, `render_chunk_file`,
`finish_success`); calling them in order gives the same reports as the flow at no Prefect start
(20–40 s), and lets a test read each report's context from the chunk files.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Settings
from pipeline.core.profile import DEFAULT_PROFILE, ScoringProfile
from pipeline.run import steps
from pipeline.write.names import REPORTS_DIR


def reports_of(workbook: Path, output_dir: Path, profile: ScoringProfile = DEFAULT_PROFILE,
               ) -> tuple[Path, dict[str, dict[str, object]]]:
    """Run `workbook` into `output_dir` scored by `profile`: its published reports folder and each
    report's context by file name."""
    settings = Settings(output_dir=output_dir, workers=1, profile=profile)
    prepared = steps.prepare_run(workbook, settings)
    assert isinstance(prepared, steps.PreparedReports), prepared
    contexts = {name: context for chunk in prepared.chunk_files for name, _, context in steps.chunk_items(chunk)}
    rendered = [steps.render_chunk_file(chunk, prepared.staging / REPORTS_DIR, settings.templates_dir, prepared.options)
                for chunk in prepared.chunk_files]
    summary = steps.finish_success(prepared, rendered, settings)
    assert summary.output_dir is not None
    return summary.output_dir / REPORTS_DIR, contexts
