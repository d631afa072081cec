"""Forum: posting agents under community rules, reports, a guardian, moderation and graduated sanctions."""
