"""docs/tour.md is executed as a doctest: every example's printed output must still hold."""
from __future__ import annotations

import doctest

from conftest import ROOT


def test_tour_output_is_current():
    result = doctest.testfile(str(ROOT / "docs" / "tour.md"), module_relative=False,
                              optionflags=doctest.REPORT_UDIFF)
    assert result.attempted > 40
    assert result.failed == 0, "docs/tour.md is stale: run `python docs/regenerate_tour.py` and review the diff"


def test_tour_examples_come_from_its_template():
    template = set((ROOT / "docs" / "tour.template.md").read_text().splitlines())
    prompts = [line for line in (ROOT / "docs" / "tour.md").read_text().splitlines()
               if line.startswith((">>> ", "... "))]
    assert len(prompts) > 40
    assert [line for line in prompts if line not in template] == [], "edit docs/tour.template.md, then regenerate"
