"""The leaderboard site: result records -> static HTML (harness.site.leaderboard.build_site).

Its templates/ and static/ folders ship inside this package, so an installed harness renders the site too.
"""
