"""Plug-in files: loaded in every job, and found again as the inputs of the jobs that use them."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import SimpleNamespace

from compfair.compression import METHODS, get_method
from compfair.plots import FIGURES, unregister_figure
from compfair.plugins import PLUGIN_PREFIX, load_job_plugins, plugin_file_of

REPO = Path(__file__).resolve().parents[2]

PLUGIN = """
from compfair.compression import register_method
from compfair.compression.methods.magnitude import GlobalMagnitude
from compfair.plots import register_figure


@register_method("plugin_file_test")
class Halve(GlobalMagnitude):
    summary = "a throwaway method"


@register_figure("plugin_file_test", category="Quality")
def draw(tables, out_path, options):
    return None
"""


def test_a_job_loads_the_configs_plugin_files_and_knows_where_each_entry_came_from(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    (project / "workflow_scripts").mkdir(parents=True)
    (project / "plugins").mkdir()
    plugin = project / "plugins" / "plugin_file_test.py"
    plugin.write_text(PLUGIN)
    job = SimpleNamespace(
        config={"plugins": ["plugins/plugin_file_test.py"]},
        scriptdir=str(project / "workflow_scripts"),
    )
    try:
        load_job_plugins(job)  # relative to the project: the scripts' parent folder
        assert plugin_file_of(get_method("plugin_file_test")) == str(plugin)  # an instance
        assert plugin_file_of(METHODS["plugin_file_test"]) == str(plugin)  # a class
        assert plugin_file_of(FIGURES["plugin_file_test"].draw) == str(plugin)  # a function
        assert plugin_file_of(get_method("magnitude")) is None  # the package's own
        assert plugin_file_of(len) is None
        load_job_plugins(SimpleNamespace(config={"plugins": None}, scriptdir="."))  # none
    finally:
        METHODS.pop("plugin_file_test", None)
        unregister_figure("plugin_file_test")
        sys.modules.pop(f"{PLUGIN_PREFIX}plugin_file_test", None)


def test_every_rule_script_loads_the_plugins_before_anything_else() -> None:
    """So that a plug-in of any kind reaches every job (no script left out)."""
    scripts = sorted((REPO / "workflow_scripts").glob("*.py"))
    assert len(scripts) >= 17
    preamble = re.compile(
        r"^hand_over\(\).*\n\nfrom compfair.plugins import load_job_plugins\n\n"
        r"load_job_plugins\(snakemake\)",
        re.MULTILINE,
    )
    missing = [p.name for p in scripts if not preamble.search(p.read_text())]
    assert not missing, missing
