"""The leaderboard site: result records -> static HTML (harness.site.leaderboard.build_site).

Its templates/ and static/ folders ship inside this package, so an installed harness renders the site too.
Nothing here imports torch (rendering static HTML from JSON records must not load a GPU stack): what the site
needs from the gates (GATED_PROFILES, tiers) lives in the torch-free harness.spread. tests/test_site_package.py
checks both.
"""
