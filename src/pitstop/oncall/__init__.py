"""On-call and escalation: contacts, schedules (rotations, hand-offs, overrides, iCal), escalation
policies driven by the incident feed, and signed acknowledge links.

- `schedule`: who is on call when (pure);
- `escalation`: the feed subscriber and scheduled job that page, step by step, until acknowledged;
- `links`: signed acknowledge links;
- `contacts`: contacts as alert channels of the router (email, SMS gateway, webhook).

Settings are in `pitstop.config.oncall` (`[oncall]`).
"""
