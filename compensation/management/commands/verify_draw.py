"""Recompute a lottery / lucky bag draw from its revealed seed and frozen entrant list.

    manage.py verify_draw <campaign id> [--seed HEX] [--entrants FILE]

With --seed/--entrants it checks published values against what an outsider supplies (e.g. the
entrant list downloaded from the public verify page) instead of the database's copy.
"""

from django.core.management.base import BaseCommand, CommandError

from compensation import draws
from compensation.models import Campaign, DrawEntrant


def read_entrants(path):
    """One entrant id (a positive integer) per line, as downloaded from the public entrant list."""
    try:
        with open(path, encoding="ascii") as fh:
            words = fh.read().split()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CommandError(f"{path} is not the entrant list: expected one number per line") from None
    ids = []
    for number, word in enumerate(words, start=1):
        if not word.isdigit() or len(word) > 18:
            raise CommandError(f"{path}: entry {number} ({word[:20]!r}) is not an entrant id")
        ids.append(int(word))
    return ids


class Command(BaseCommand):
    help = "Recompute the winners of a verifiable draw and compare them with the published ones."

    def add_arguments(self, parser):
        parser.add_argument("campaign_id", type=int)
        parser.add_argument("--seed", help="the revealed seed (default: the stored one, if revealed)")
        parser.add_argument("--entrants", help="file with one entrant id per line (default: the database)")

    def handle(self, *args, campaign_id, seed=None, entrants=None, **options):
        campaign = Campaign.objects.filter(pk=campaign_id, kind__in=Campaign.DRAW_KINDS).first()
        if campaign is None:
            raise CommandError(f"campaign {campaign_id} is not a lottery or lucky bag")
        if not campaign.draw_closed_at:
            raise CommandError("the draw has not closed yet")
        if seed is None:
            if not campaign.seed_revealed_at:
                raise CommandError("the seed has not been revealed yet")
            seed = campaign.seed
        if not (len(seed) == 64 and all(c in "0123456789abcdef" for c in seed)):
            raise CommandError("--seed must be the 64 lowercase hex characters published on the verify page")
        if entrants:
            ids = read_entrants(entrants)
        else:
            ids = list(DrawEntrant.objects.filter(campaign=campaign).values_list("viewer_id", flat=True))
        result = draws.verify(seed=seed, published_seed_hash=campaign.seed_hash, entrant_ids=ids,
                              published_entrants_hash=campaign.entrants_hash, k=campaign.winner_count or 0,
                              published_winners=campaign.winners)
        self.stdout.write(f"seed sha256 matches published hash: {result['seed_matches_hash']}")
        self.stdout.write(f"entrants ({len(set(ids))}) sha256 matches published hash: {result['entrants_match_hash']}")
        self.stdout.write(f"recomputed winners: {result['recomputed_winners']}")
        self.stdout.write(f"published winners:  {campaign.winners}")
        if not result["ok"]:
            raise CommandError("VERIFICATION FAILED")
        self.stdout.write(self.style.SUCCESS("OK: the draw verifies"))
