"""tap-mokapen: a Singer tap for the Mokapen CRM API."""
