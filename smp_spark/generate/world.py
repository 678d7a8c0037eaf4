"""The fixed world: the 11/77/668 category hierarchy, its names and the tag vocabulary."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smp_spark.generate.common import CONCEPT_TAGS, VOCABULARY_SIZE, WORLD_SEED, _stream
from smp_spark.generate.tag_words import PLAIN_TAG_WORDS

# Posts per category in the real SMPD training split (305,613 posts): the organisers' dataset page
# (social-media-prediction/SMPChallenge, 2025/dataset.html), equal to the counts of the real split
# (../shared/real_smpd/SOURCES.md). "Whether" is the real spelling.
CATEGORY_COUNTS = {
    "Travel&Active&Sports": 66_469,
    "Holiday&Celebrations": 54_751,
    "Fashion": 49_282,
    "Entertainment": 29_590,
    "Social&People": 23_351,
    "Whether&Season": 20_292,
    "Animal": 19_992,
    "Food": 16_727,
    "Urban": 15_272,
    "Electronics": 5_613,
    "Family": 4_274,
}
N_CONCEPTS = 668

# 77 subcategories, each with two real concept names; the other concepts get synthetic names.
SUBCATEGORIES = {
    "Travel&Active&Sports": {
        "Travel": ("landmark", "backpack"),
        "Beach": ("seashore", "sand"),
        "Mountain": ("summit", "alps"),
        "Hiking": ("trail", "trekking"),
        "Cycling": ("bicycle", "peloton"),
        "Running": ("marathon", "jogging"),
        "Soccer": ("football", "stadium"),
        "Skiing": ("snowboard", "slope"),
        "Surfing": ("surfboard", "wave"),
        "Motorsport": ("racecar", "rally"),
        "Sailing": ("sailboat", "regatta"),
        "Camping": ("tent", "campfire"),
        "Roadtrip": ("highway", "roadsign"),
    },
    "Holiday&Celebrations": {
        "Christmas": ("xmas", "ornament"),
        "Halloween": ("pumpkin", "costume"),
        "Wedding": ("bride", "bouquet"),
        "Birthday": ("cake", "balloon"),
        "Festival": ("carnival", "lantern"),
        "Fireworks": ("firework", "sparkler"),
        "Easter": ("easteregg", "bunny"),
        "Parade": ("marchingband", "float"),
    },
    "Fashion": {
        "Girls,Fashion": ("skirt", "dress"),
        "Streetstyle": ("ootd", "sneakers"),
        "Menswear": ("suit", "necktie"),
        "Accessories": ("handbag", "jewelry"),
        "Shoes": ("heels", "boots"),
        "Makeup": ("lipstick", "eyeliner"),
        "Cosplay": ("anime", "wig"),
        "Runway": ("catwalk", "model"),
    },
    "Entertainment": {
        "Music": ("rnb", "guitar"),
        "Concert": ("livemusic", "stage"),
        "Movie": ("cinema", "premiere"),
        "Theater": ("musical", "actor"),
        "Dance": ("ballet", "salsa"),
        "Games": ("videogame", "arcade"),
        "Comics": ("superhero", "comiccon"),
        "Toys": ("lego", "figurine"),
        "Circus": ("clown", "acrobat"),
    },
    "Social&People": {
        "Portrait": ("headshot", "face"),
        "Friends": ("friendship", "hug"),
        "Party": ("nightclub", "dj"),
        "Selfie": ("mirror", "smile"),
        "Crowd": ("people", "street"),
        "Protest": ("demonstration", "banner"),
        "Work": ("office", "meeting"),
    },
    "Whether&Season": {
        "Raining": ("puddle", "umbrella"),
        "Snow": ("snowman", "blizzard"),
        "Autumn": ("leaves", "foliage"),
        "Spring": ("blossom", "tulip"),
        "Summer": ("sunshine", "heatwave"),
        "Sunset": ("dusk", "goldenhour"),
        "Clouds": ("cumulus", "storm"),
    },
    "Animal": {
        "Dogs": ("puppy", "labrador"),
        "Cats": ("kitten", "tabby"),
        "Birds": ("heron", "owl"),
        "Insects": ("butterfly", "bee"),
        "Wildlife": ("deer", "fox"),
        "Horses": ("pony", "stallion"),
        "Fish": ("aquarium", "koi"),
    },
    "Food": {
        "Dessert": ("cupcake", "icecream"),
        "Drinks": ("cocktail", "beer"),
        "Restaurant": ("dinner", "chef"),
        "Fruit": ("strawberry", "apple"),
        "Baking": ("bread", "cookies"),
        "Coffee": ("latte", "espresso"),
    },
    "Urban": {
        "StreetArt": ("wallporn", "graffiti"),
        "Architecture": ("facade", "skyscraper"),
        "Night": ("neon", "streetlight"),
        "Transport": ("tram", "subway"),
        "Bridges": ("suspension", "arch"),
        "Skyline": ("cityscape", "rooftop"),
    },
    "Electronics": {
        "Gadgets": ("smartphone", "drone"),
        "Cameras": ("dslr", "lens"),
        "Computers": ("laptop", "keyboard"),
    },
    "Family": {"Kids": ("toddler", "playground"), "Baby": ("newborn", "stroller"), "Parents": ("mom", "dad")},
}

COMMON_TAGS = (
    "2015 2016 nature travel canon nikon sony bw blackandwhite sky city street portrait landscape "
    "night light water summer winter spring autumn people art photography color sunset beach "
    "architecture flower green blue red white black family friends food music party love festival "
    "snow clouds sea park tree trees iphone instagram square squareformat sun bridge river lake "
    "mountain dog cat bird animal urban building reflection macro closeup old vintage film"
).split()

GROUP_WORDS = (
    "Flickr Addicts Photography Nature Black White Street Urban Cats Dogs Macro Landscape Best "
    "Beautiful World Travel Canon Nikon Sony Portrait Sky Clouds Sunset Art Color Light Shadow "
    "Birds Flowers Night City Architecture Europe Asia America Photos Pictures Lovers Club Group "
    "Images Amazing Fantastic Creative Minimal Abstract Film Vintage Music Fashion Food Family"
).split()

# The tag vocabulary after the common tags: the concept names, every plain word, short synthetic
# words of one syllable (~1.7 word pieces), compounds of two plain words (~3) and synthetic words
# of two syllables (~3.2), ranked by a weighted random order that puts plain and short words first.
SHORT_TAG_WORDS, COMPOUND_SHARE = 1000, 0.5
PLAIN_WEIGHT, SHORT_WEIGHT = 300.0, 30.0


_ONSETS = "b c d f g h j k l m n p r s t v w z br ch dr gr sh st tr pl kl".split()
_VOWELS = "a e i o u ai ea ou".split()
_CODAS = ["", "n", "r", "s", "l", "m", "k", "t"]
_SYLLABLES = np.array([o + v + c for o in _ONSETS for v in _VOWELS for c in _CODAS])


def synthetic_words(
    rng: np.random.Generator, n: int, exclude: set[str], syllables: tuple[int, int] = (2, 3)
) -> list[str]:
    """``n`` distinct pronounceable lowercase words of ``syllables`` (fewest, most; at most one
    apart: the last syllable is there half the time) syllables, none of them in ``exclude``."""
    fewest, most = syllables
    assert 1 <= fewest <= most <= fewest + 1 and n < 0.9 * len(_SYLLABLES) ** fewest  # rejection stays quick
    words: list[str] = []
    seen = set(exclude)
    while len(words) < n:
        k = 2 * (n - len(words)) + 64
        parts = _SYLLABLES[rng.integers(0, len(_SYLLABLES), (k, most))]
        drawn = parts[:, 0]
        for j in range(1, fewest):
            drawn = np.char.add(drawn, parts[:, j])
        if most > fewest:
            drawn = np.char.add(drawn, np.where(rng.random(k) < 0.5, parts[:, most - 1], ""))
        _take_new(drawn.tolist(), seen, words, n)
    return words


def _take_new(candidates: list[str], seen: set[str], words: list[str], n: int) -> None:
    """Append to ``words`` the ``candidates`` not ``seen`` yet, in order, until it holds ``n``."""
    for word in candidates:
        if len(words) == n:
            return
        if word not in seen:
            seen.add(word)
            words.append(word)


def compound_words(rng: np.random.Generator, n: int, parts: list[str], exclude: set[str]) -> list[str]:
    """``n`` distinct compounds of two different ``parts`` ("railwaystation"), none in ``exclude``."""
    words: list[str] = []
    seen = set(exclude)
    pool = np.array(parts, dtype=object)
    while len(words) < n:
        pairs = rng.integers(0, len(pool), (2 * (n - len(words)) + 64, 2))
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        _take_new((pool[pairs[:, 0]] + pool[pairs[:, 1]]).tolist(), seen, words, n)
    return words


def tag_vocabulary(rng: np.random.Generator, concepts: list[str], size: int) -> list[str]:
    """``size`` distinct tag words ranked by frequency: the common tags, then the concept names, the
    plain words, short synthetic words, compounds and two-syllable synthetic words in a weighted
    random order (plain words ``PLAIN_WEIGHT`` and short ones ``SHORT_WEIGHT`` times as likely as
    the rest to come next), so the frequent tags are mostly plain words and the rare ones names."""
    named = [c for c in concepts if c not in COMMON_TAGS]
    taken = set(COMMON_TAGS) | set(concepts)
    plain = [w for w in PLAIN_TAG_WORDS if w not in taken]
    taken |= set(plain)
    short = synthetic_words(rng, SHORT_TAG_WORDS, taken, syllables=(1, 1))
    taken |= set(short)
    rest = size - len(COMMON_TAGS) - len(named) - len(plain) - len(short)
    compounds = compound_words(rng, round(COMPOUND_SHARE * rest), plain + COMMON_TAGS, taken)
    taken |= set(compounds)
    longer = synthetic_words(rng, rest - len(compounds), taken, syllables=(2, 2))
    groups = [(named, 1.0), (plain, PLAIN_WEIGHT), (short, SHORT_WEIGHT), (compounds, 1.0), (longer, 1.0)]
    tail = [word for words, _ in groups for word in words]
    weight = np.concatenate([np.full(len(words), w, dtype=float) for words, w in groups])
    order = np.argsort(rng.exponential(size=len(tail)) / weight, kind="stable")  # weighted permutation
    return COMMON_TAGS + [tail[i] for i in order]


@dataclass(frozen=True)
class World:
    categories: list[str]
    subcategories: list[str]
    sub_category: np.ndarray  # category index of each subcategory
    concepts: list[str]
    concept_sub: np.ndarray  # subcategory index of each concept
    concept_prob: np.ndarray
    vocabulary: list[str]  # tag words, most frequent first
    concept_tags: np.ndarray  # (concepts, CONCEPT_TAGS) vocabulary ids; column 0 is the concept's name


def _concepts_per_subcategory(shares: np.ndarray, sub_category: np.ndarray) -> np.ndarray:
    """Split the 668 concepts over subcategories: at least 4 each, the rest by category share."""
    per_sub = shares[sub_category] / np.bincount(sub_category)[sub_category]
    extra = (N_CONCEPTS - 4 * len(sub_category)) * per_sub / per_sub.sum()
    counts = 4 + np.floor(extra).astype(int)
    largest_remainders = np.argsort(-(extra - np.floor(extra)), kind="stable")
    counts[largest_remainders[: N_CONCEPTS - counts.sum()]] += 1
    return counts


def build_world() -> World:
    """Category hierarchy (11/77/668), concept frequencies and the tag vocabulary; seed-independent."""
    rng = _stream(WORLD_SEED, "world")
    categories = list(CATEGORY_COUNTS)
    shares = np.array(list(CATEGORY_COUNTS.values()), float)
    shares /= shares.sum()
    subcategories, sub_category, real_concepts = [], [], []
    for c, category in enumerate(categories):
        for sub, names in SUBCATEGORIES[category].items():
            subcategories.append(sub)
            sub_category.append(c)
            real_concepts.append(names)
    sub_category = np.array(sub_category)
    counts = _concepts_per_subcategory(shares, sub_category)

    reserved = {w for names in real_concepts for w in names} | set(COMMON_TAGS)
    fillers = iter(synthetic_words(rng, int(counts.sum()) - 2 * len(counts), reserved))
    concepts, concept_sub = [], []
    for s, (names, n) in enumerate(zip(real_concepts, counts)):
        concepts += list(names) + [next(fillers) for _ in range(n - 2)]
        concept_sub += [s] * n
    concept_sub = np.array(concept_sub)

    # Zipf-like concept frequencies within each category, in a random order of its concepts.
    concept_cat = sub_category[concept_sub]
    concept_prob = np.zeros(len(concepts))
    for c in range(len(categories)):
        members = rng.permutation(np.flatnonzero(concept_cat == c))
        weights = 1.0 / np.arange(1, len(members) + 1) ** 0.9
        concept_prob[members] = shares[c] * weights / weights.sum()

    vocabulary = tag_vocabulary(rng, concepts, VOCABULARY_SIZE)
    word_id = {w: i for i, w in enumerate(vocabulary)}
    tied = rng.integers(200, 20_000, (len(concepts), CONCEPT_TAGS - 1))
    concept_tags = np.column_stack([[word_id[c] for c in concepts], tied])
    return World(categories, subcategories, sub_category, concepts, concept_sub, concept_prob, vocabulary, concept_tags)
