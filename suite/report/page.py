"""The pages rpg-bench writes (the report, a ladder, a history): jinja2 templates that escape
every value they are given and refuse a name they are not."""

from __future__ import annotations

import jinja2


def template(name: str, package: str = "suite.report") -> jinja2.Template:
    """``package``/templates/``name``, autoescaped, strict about undefined names."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"), autoescape=True, undefined=jinja2.StrictUndefined
    )
    return env.get_template(name)
