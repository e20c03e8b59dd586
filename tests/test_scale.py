"""Running at scale: identical outputs on every run, and the same outputs on a Dask cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.run.flow import run_workbook

pytestmark = pytest.mark.usefixtures("prefect_harness")


def tree_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under a folder, by relative path."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_two_runs_give_byte_identical_outputs(workbook_factory, tmp_path: Path) -> None:
    workbook = workbook_factory(name="同一.xlsx")
    run_workbook(workbook, Settings(output_dir=tmp_path / "a", chunk_size=1))
    run_workbook(workbook, Settings(output_dir=tmp_path / "b", chunk_size=1, workers=1))
    first, second = tree_bytes(tmp_path / "a"), tree_bytes(tmp_path / "b")
    assert set(first) == {"同一/manifest.json", "同一/汇总表.xlsx", "同一/校验报告.xlsx", "同一/同一_报告.zip",
                          "同一/自评表.xlsx", "同一/部门汇总报告.docx",
                          "同一/reports/P-001_信访救助专项资金.docx", "同一/reports/P-002_领导接访费用.docx"}
    assert first == second


def test_a_dask_cluster_gives_the_same_outputs_as_the_default_run(workbook_factory, tmp_path: Path,
                                                                  monkeypatch) -> None:
    from distributed import LocalCluster
    from prefect.settings import PREFECT_API_URL

    workbook = workbook_factory(name="集群.xlsx")
    run_workbook(workbook, Settings(output_dir=tmp_path / "local", chunk_size=1))

    # Workers are separate processes on loopback; like workers on other machines they find the
    # Prefect API through their environment.
    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        summary = run_workbook(workbook, Settings(output_dir=tmp_path / "dask", chunk_size=1,
                                                  dask_address=cluster.scheduler_address))
        prefixes = dict(cluster.scheduler.task_prefixes)
    print("dask task prefixes:", prefixes)
    assert summary.status == "success" and summary.counts.reports == 2
    assert any("render" in name for name in prefixes), prefixes
    assert tree_bytes(tmp_path / "dask") == tree_bytes(tmp_path / "local")
