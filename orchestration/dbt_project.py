"""The dbt project as Dagster sees it.

The manifest (``dbt_project/target/manifest.json``) is prepared at setup, never at import
time:

    GVW_DATA_DIR=... dagster-dbt project prepare-and-package --file orchestration/dbt_project.py

which runs ``dbt parse`` with the ``dbt`` found on PATH (``uv run`` puts the venv's there).
The profile (``dbt_project/profiles.yml``) requires ``GVW_DATA_DIR`` even to parse (the
Makefile exports it); parsing does not open the warehouse.
"""

from __future__ import annotations

from dagster_dbt import DbtProject

from orchestration.settings import DBT_PROJECT_DIR

dbt_project = DbtProject(
    project_dir=DBT_PROJECT_DIR,
    # profiles.yml lives in the project, beside dbt_project.yml.
    profiles_dir=DBT_PROJECT_DIR,
    target="warehouse",
)
