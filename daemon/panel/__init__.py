"""The touch panel: a page served at `/` that drives the hall through the public API.

Plain ES modules and CSS from `static/`, no build step and nothing fetched from
anywhere but the daemon (docs/panel.md says why). `views` lists the page's views: the
core's, one per kind of equipment, and those plugins add with `gridhall_panel_views`;
`site` serves them with their headers; `daemon.api.panel` tells a signed-in page which
views it may show.
"""
