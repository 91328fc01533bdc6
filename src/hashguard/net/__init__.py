"""Reaching other hosts safely (floor 3, below the database): ``fetch`` (the SSRF-safe URL
fetcher: http and https only, public addresses only or named networks, the checked address
connected to, redirects checked again, size and time limits, every refusal a named outcome)
``dns`` (a name's CNAME chain and addresses through configured nameservers) and ``answers``
(another service's httpx answer read as text or JSON whatever it holds). It imports
nothing from floor 3; the service (HMA's ``url=``, the desk's content proxy), the exchanges and
the hotline's crawler and traces use it."""
