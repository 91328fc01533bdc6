"""The hotline: public URL reports, crawl, triage, assessment, hosting trace, routing (floor 3)."""
