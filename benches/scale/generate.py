"""Seeded generator of large German news archives for weitere's scale benchmark.

It grows the shipped DER STANDARD sample (`data/gnad-sample.jsonl.gz`, 514 articles) into an archive of N
articles in weitere's JSON Lines schema, with the statistics that decide how an index behaves at scale:

* a vocabulary that keeps growing with the number of tokens n as Heaps' law says, V ~ K * n**beta. K is
  fitted so the curve passes through the sample itself; whenever the archive's measured vocabulary falls
  behind the curve, the next articles get newly made words: compounds of the sample's nouns
  ("Regierungs" + "krise"), surnames, place names and company names built from the sample's syllables.
  Nouns that are not new are drawn Zipf-like by rank (common words stay common); other content words are
  swapped for sample words with the same ending, drawn by their sample frequency;
* stories: each story has a section, a start, a length (a handful of articles, some long runners with dozens)
  and runs over hours to weeks; all its articles share the story's key terms (existing nouns and new names),
  follow-ups repeat some sentences of the first article ("recap") plus fresh text;
* near-duplicate versions: a share of follow-ups re-publish the previous article of the story minutes to
  hours later with small edits (a site suffix on the title, a changed, dropped or added sentence);
* five years of dates between 06:00 and midnight Vienna time, as RFC 3339 with the offset (+01:00/+02:00),
  written in time order; the section mix and body lengths of the sample.

The same --articles, --seed and sample give byte-identical output. The output is streamed: only the stories
still running are kept in memory. Standard library only.

    python3 benches/scale/generate.py --articles 100000 --seed 1 --out target/scale/archive-100k.jsonl.gz

Statistics (articles, word types, tokens, time, near-duplicate share, story lengths and the Heaps exponent
fitted at a few checkpoints) go to stderr.
"""

import argparse
import gzip
import heapq
import json
import math
import random
import re
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

DEFAULT_SAMPLE = Path(__file__).resolve().parents[2] / "data" / "gnad-sample.jsonl.gz"

# Heaps' law V = K * n**beta in lower-cased \w+ tokens of title and body; K is fitted through the sample.
HEAPS_BETA = 0.55
# At most this many new words go into one article (keeps the first articles readable while V catches up).
MAX_NEW_WORDS_PER_ARTICLE = 20

# Time line: five years, articles between 06:00 and 24:00 local (Vienna) time.
FIRST_DAY = datetime(2019, 1, 1)
SPAN_DAYS = 5 * 365 + 1
DAY_START_HOUR = 6
ACTIVE_SECONDS_PER_DAY = (24 - DAY_START_HOUR) * 3600
# A story runs for at most this many days; stories start early enough to end inside the five years.
MAX_STORY_DAYS = 21

# Story lengths: log-normal, median and spread; long runners are rarer, longer and slower.
STORY_LEN_MEDIAN = 3.5
STORY_LEN_SIGMA = 0.85
STORY_LEN_MAX = 40
LONG_RUNNER_SHARE = 0.04
LONG_RUNNER_LEN_MEDIAN = 25
LONG_RUNNER_LEN_SIGMA = 0.5
LONG_RUNNER_LEN_MAX = 80
# Mean gap between follow-ups, in active (06:00-24:00) hours.
FOLLOW_UP_GAP_HOURS = 8.0
LONG_RUNNER_GAP_HOURS = 30.0
# A follow-up is a near-duplicate version of the story's previous article with this probability.
NEAR_DUPLICATE_SHARE = 0.12
NEAR_DUPLICATE_GAP_MINUTES = (5, 240)
NEAR_DUPLICATE_TITLE_SUFFIXES = (" - DER STANDARD", " | DER STANDARD", " (APA)", " - derStandard.at")
NEAR_DUPLICATE_TITLE_SUFFIX_SHARE = 0.6
NEAR_DUPLICATE_AGENCY_LINE_SHARE = 0.3
NEAR_DUPLICATE_AGENCY_LINES = ("(APA, red.)", "(APA/dpa)", "(red, APA)", "(Reuters, APA)", "(dpa, AFP)")

# Story key terms: existing nouns and new names (persons, places, companies).
KEY_NOUNS = (1, 3)
KEY_NAMES = (1, 3)
# Chance that a follow-up brings one more key term (the story develops).
NEW_KEY_TERM_SHARE = 0.2
# Chance that a story name is new (else a name of an earlier story comes back).
NEW_NAME_SHARE = 0.7
# Chance that a person key term is written with the first name.
FULL_NAME_SHARE = 0.3

# Text: share of a follow-up's sentences repeated from the story's first article, and substitution rates.
RECAP_SHARE = 0.25
NOUN_SUBSTITUTION = 0.45
WORD_SUBSTITUTION = 0.3
TITLE_NOUN_SUBSTITUTION = 0.7
TITLE_WORD_SUBSTITUTION = 0.5
# Share of noun substitutions that insert one of the story's key terms.
KEY_TERM_SHARE = 0.3

# Which sample words may be swapped: nouns (capitalised, not sentence-initial) and lower-case content words
# of at least this length outside the most frequent lower-case words (function words).
MIN_NOUN_LEN = 4
MIN_WORD_LEN = 6
FUNCTION_WORD_RANKS = 150
WORD_CLASS_SUFFIX = 3
CAPITALISED_FUNCTION_WORDS = frozenset(
    "Dass Diese Dieser Dieses Dabei Damit Dann Denn Doch Eine Einen Einem Einer Eines Ihre Ihrer Ihren Ihnen "
    "Laut Nach Noch Oder Sein Seine Seit Sich Sowie Über Unter Wenn Weil Wird Wurde Zwar Aber Auch Alle Also "
    "Beim Bereits Hier Dort Jetzt Mehr Nicht Schon Selbst Sondern Trotz Während Wegen Wieder Zudem".split()
)

# Word synthesis: mix of kinds for a new word in running text and for a new story name.
NEW_WORD_KINDS = (("compound", 0.6), ("surname", 0.2), ("place", 0.1), ("company", 0.1))
NEW_NAME_KINDS = (("surname", 0.5), ("place", 0.25), ("company", 0.25))
SURNAME_ENDINGS = ("er", "ner", "ler", "mann", "inger", "bauer", "huber", "berger", "egger", "mayr", "ich",
                   "ović", "ski", "rath", "hofer", "eder", "wald", "ke", "ig", "in")
PLACE_ENDINGS = ("dorf", "berg", "hausen", "ingen", "stadt", "feld", "bach", "heim", "brunn", "kirchen", "au",
                 "furt", "see", "burg", "tal", "stein")
COMPANY_ENDINGS = ("tec", "tronic", "soft", "med", "pharma", "werke", "net", "data", "ix", "on", "ia", "ex",
                   "bank", "log")
FIRST_NAMES = ("Andrea", "Anna", "Barbara", "Christian", "Claudia", "Daniel", "Elisabeth", "Eva", "Florian",
               "Franz", "Gerhard", "Hannes", "Helga", "Johann", "Julia", "Karin", "Katharina", "Klaus", "Lukas",
               "Maria", "Markus", "Martin", "Michael", "Monika", "Peter", "Sabine", "Sandra", "Sebastian",
               "Stefan", "Susanne", "Thomas", "Ursula", "Werner", "Wolfgang")
SYLLABLE_RE = re.compile(r"[bcdfghjklmnprstvwz]{0,2}[aeiouäöü]{1,2}")
MAX_NEW_WORD_TRIES = 20

# Output.
ID_PREFIX = "scale-"
ID_DIGITS = 7
STORY_PREFIX = "story-"
URL_BASE = "https://archiv.example"
SLUG_WORDS = 8
SLUG_CHARACTERS = 120
GZIP_LEVEL = 1
WRITE_BATCH = 256
HEAPS_CHECKPOINTS = 8
PROGRESS_EVERY = 100_000

PIECE_RE = re.compile(r"\w+|\W+")
TOKEN_RE = re.compile(r"\w+")
NOUN_RE = re.compile(r"[A-ZÄÖÜ][a-zäöüß]+")
WORD_RE = re.compile(r"[a-zäöüß]+")
SENTENCE_BREAK_RE = re.compile(r"(?<=[.!?])\s+(?=[A-ZÄÖÜ\"„“0-9])")
ABBREVIATION_RE = re.compile(r"(?:\b(?:Dr|Prof|Mag|St|Nr|Mio|Mrd|bzw|ca|vgl|etc|Abs|Art|Jh|inkl|evtl|usw)|\b[A-Z]|(?<!\d)\d{1,2})\.$")
SLUG_RE = re.compile(r"[^a-z0-9]+")
TRANSLITERATION = (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"))


class Sentence:
    """A sample sentence split into pieces (words and what lies between them) with the swappable slots."""

    __slots__ = ("pieces", "noun_slots", "word_slots", "fixed_words", "token_count", "seen")

    def __init__(self, pieces, noun_slots, word_slots, fixed_words, token_count):
        self.pieces = pieces
        # (index, lower-cased original) of nouns that may be swapped.
        self.noun_slots = noun_slots
        # (index, lower-cased original, candidates) of content words; candidates lists the sample words of
        # the same ending, each once per occurrence.
        self.word_slots = word_slots
        # Lower-cased words outside the slots: counted into the vocabulary the first time the sentence is used.
        self.fixed_words = fixed_words
        self.token_count = token_count
        self.seen = False


class Template:
    """One sample article: its section, its title and its body's sentences."""

    __slots__ = ("section", "title", "sentences")

    def __init__(self, section, title, sentences):
        self.section = section
        self.title = title
        self.sentences = sentences


class Story:
    """A story while it is running: its label, section, key terms and the texts written so far."""

    __slots__ = ("label", "section", "keys", "recap", "last_title", "last_body", "remaining")

    def __init__(self, label, section, keys, remaining):
        self.label = label
        self.section = section
        # (short form, long form) pairs, most important first.
        self.keys = keys
        # Sentences of the first article, for follow-ups to repeat.
        self.recap = []
        # (text, tokens) of the last article that was not a near-duplicate, and of its body's sentences.
        self.last_title = ("", 0)
        self.last_body = []
        self.remaining = remaining


def read_sample(path):
    """Returns the sample's articles as (section, title, body) triples, in file order."""
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                section = row.get("section") or row.get("category") or "Panorama"
                rows.append((section, row.get("title") or "", row.get("body") or ""))
    if not rows:
        sys.exit(f"no articles in {path}")
    return rows


def split_sentences(text):
    """Splits a body into sentences at . ! ? before a capital letter, not after abbreviations or numbers."""
    sentences = []
    for part in SENTENCE_BREAK_RE.split(text.strip()):
        if sentences and ABBREVIATION_RE.search(sentences[-1]):
            sentences[-1] += " " + part
        elif part:
            sentences.append(part)
    return sentences


def lower_word_counts(rows):
    """Counts the lower-case words of the sample (to tell function words from content words)."""
    counts = Counter()
    for _, title, body in rows:
        for piece in PIECE_RE.findall(title + " " + body):
            if WORD_RE.fullmatch(piece):
                counts[piece] += 1
    return counts


def word_classes(counts):
    """Groups content words by their last letters; each list holds a word once per sample occurrence."""
    function_words = {word for word, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:FUNCTION_WORD_RANKS]}
    classes = {}
    for word in sorted(counts):
        if len(word) >= MIN_WORD_LEN and word not in function_words:
            classes.setdefault(word[-WORD_CLASS_SUFFIX:], []).extend([word] * counts[word])
    return classes


def parse_sentence(text, classes, noun_counts):
    """Splits a sentence into pieces and marks its swappable nouns and content words."""
    pieces = PIECE_RE.findall(text)
    noun_slots = []
    word_slots = []
    fixed_words = []
    token_count = 0
    for index, piece in enumerate(pieces):
        if not TOKEN_RE.match(piece):
            continue
        token_count += len(TOKEN_RE.findall(piece.lower()))
        sentence_initial = token_count == 1
        candidates = classes.get(piece[-WORD_CLASS_SUFFIX:]) if len(piece) >= MIN_WORD_LEN else None
        if sentence_initial:
            fixed_words.extend(TOKEN_RE.findall(piece.lower()))
        elif len(piece) >= MIN_NOUN_LEN and piece not in CAPITALISED_FUNCTION_WORDS and NOUN_RE.fullmatch(piece):
            noun_slots.append((index, piece.lower()))
            noun_counts[piece] += 1
        elif candidates is not None and WORD_RE.fullmatch(piece):
            word_slots.append((index, piece, candidates))
        else:
            fixed_words.extend(TOKEN_RE.findall(piece.lower()))
    return Sentence(tuple(pieces), tuple(noun_slots), tuple(word_slots), tuple(fixed_words), token_count)


def build_templates(rows):
    """Parses the sample into templates, and returns them with the nouns ranked by frequency."""
    classes = word_classes(lower_word_counts(rows))
    noun_counts = Counter()
    templates = []
    for section, title, body in rows:
        sentences = [parse_sentence(text, classes, noun_counts) for text in split_sentences(body)]
        if not sentences:
            continue
        templates.append(Template(section, parse_sentence(title, classes, noun_counts), sentences))
    ranked_nouns = [noun for noun, _ in sorted(noun_counts.items(), key=lambda item: (-item[1], item[0]))]
    return templates, ranked_nouns


def syllables(rows):
    """Returns the syllable-like chunks of the sample's lower-case words, once per occurrence."""
    chunks = []
    for _, title, body in rows:
        for word in TOKEN_RE.findall((title + " " + body).lower()):
            if word.isalpha():
                chunks.extend(SYLLABLE_RE.findall(word))
    return chunks


def sample_vocabulary(rows):
    """Returns the sample's token count and its set of lower-case word types."""
    types = set()
    tokens = 0
    for _, title, body in rows:
        words = TOKEN_RE.findall((title + " " + body).lower())
        tokens += len(words)
        types.update(words)
    return tokens, types


def weighted_choice(rng, choices):
    """Picks a name from (name, weight) pairs whose weights add up to 1."""
    draw = rng.random()
    for name, weight in choices:
        draw -= weight
        if draw < 0:
            return name
    return choices[-1][0]


def compound_link(word):
    """The linking letters German puts after the first part of a compound."""
    if word.endswith(("ung", "heit", "keit", "schaft", "ion", "tät", "tum", "ling")):
        return "s"
    if word.endswith("e"):
        return "n"
    return ""


def last_sunday(year, month):
    """The last Sunday of a month (month < 12)."""
    day = datetime(year, month + 1, 1) - timedelta(days=1)
    return day - timedelta(days=(day.weekday() + 1) % 7)


SUMMER_TIME = {}


def local_offset(moment):
    """The UTC offset of Vienna at a local time between 06:00 and 24:00 (EU summer time rule)."""
    bounds = SUMMER_TIME.get(moment.year)
    if bounds is None:
        bounds = (last_sunday(moment.year, 3) + timedelta(hours=2), last_sunday(moment.year, 10) + timedelta(hours=3))
        SUMMER_TIME[moment.year] = bounds
    return "+02:00" if bounds[0] <= moment < bounds[1] else "+01:00"


def active_to_datetime(active_seconds):
    """Maps seconds on the active time line (18 hours a day) to a local date and time."""
    day, seconds = divmod(int(active_seconds), ACTIVE_SECONDS_PER_DAY)
    return FIRST_DAY + timedelta(days=day, hours=DAY_START_HOUR, seconds=seconds)


def slug(title):
    """A URL slug from the first words of a title."""
    text = title[:SLUG_CHARACTERS].lower()
    for letter, spelling in TRANSLITERATION:
        text = text.replace(letter, spelling)
    words = SLUG_RE.sub(" ", text).split()
    return "-".join(words[:SLUG_WORDS]) or "artikel"


def fit_exponent(points):
    """Least-squares slope of log V against log n over (n, V) points."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(v) for _, v in points]
    mean_x = sum(xs) / len(xs)
    mean_y = sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return float("nan")
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread


def percentile(sorted_values, share):
    """The value at a share (0..1) of a sorted list."""
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


class Generator:
    """Holds the sample model and the growing vocabulary, and writes the archive article by article."""

    def __init__(self, rows, articles, seed, beta):
        self.rng = random.Random(seed)
        self.articles = articles
        self.beta = beta
        self.sample_articles = len(rows)
        self.templates, self.nouns = build_templates(rows)
        self.noun_stems = [noun for noun in self.nouns if 4 <= len(noun) <= 12]
        self.syllables = syllables(rows)
        sample_tokens, sample_types = sample_vocabulary(rows)
        self.heaps_k = len(sample_types) / sample_tokens ** beta
        self.known = set(sample_types)
        self.log_nouns = math.log(len(self.nouns) + 1)
        self.sections = sorted({template.section for template in self.templates})
        self.by_section = {section: [t for t in self.templates if t.section == section] for section in self.sections}
        # Sentences for the rest of a body: every sentence but the leads (which often carry a dateline).
        self.sentence_pool = {
            section: [sentence for t in self.by_section[section] for sentence in (t.sentences[1:] or t.sentences)]
            for section in self.sections
        }
        self.recent_names = []
        # Measured output statistics.
        self.types = set()
        self.tokens = 0
        self.mean_tokens = sample_tokens / len(rows)
        self.budget = 0
        self.new_words = 0
        self.near_duplicates = 0
        self.story_lengths = []
        self.story_spans_hours = []

    # Vocabulary -------------------------------------------------------------------------------------------

    def heaps_target(self, tokens):
        """The vocabulary size Heaps' law asks for after this many tokens."""
        return self.heaps_k * tokens ** self.beta

    def start_article_budget(self):
        """Sets how many new words the next article may bring, from the gap to the Heaps curve."""
        gap = self.heaps_target(self.tokens + self.mean_tokens) - len(self.types)
        self.budget = max(0, min(MAX_NEW_WORDS_PER_ARTICLE, int(gap)))

    def syllable_stem(self):
        """One or two sample syllables, capitalised: the start of a new name."""
        rng = self.rng
        count = 1 if rng.random() < 0.4 else 2
        stem = self.syllables[int(rng.random() * len(self.syllables))]
        if count == 2:
            stem += self.syllables[int(rng.random() * len(self.syllables))]
        return stem.capitalize()

    def make_word(self, kind):
        """A word of the given kind that is not in the vocabulary yet; it is added to the noun ranking."""
        rng = self.rng
        word = ""
        for _ in range(MAX_NEW_WORD_TRIES):
            if kind == "compound":
                first = self.noun_stems[int(rng.random() * len(self.noun_stems))]
                second = self.noun_stems[int(rng.random() * len(self.noun_stems))]
                word = first + compound_link(first) + second.lower()
            elif kind == "surname":
                word = self.syllable_stem() + SURNAME_ENDINGS[int(rng.random() * len(SURNAME_ENDINGS))]
            elif kind == "place":
                word = self.syllable_stem() + PLACE_ENDINGS[int(rng.random() * len(PLACE_ENDINGS))]
            else:
                word = self.syllable_stem() + COMPANY_ENDINGS[int(rng.random() * len(COMPANY_ENDINGS))]
            if word.lower() not in self.known:
                break
        else:
            word += self.syllables[int(rng.random() * len(self.syllables))]
        self.known.add(word.lower())
        self.nouns.append(word)
        self.log_nouns = math.log(len(self.nouns) + 1)
        self.new_words += 1
        return word

    def new_noun(self):
        """A new word for a noun slot, taken from the article's budget."""
        self.budget -= 1
        return self.make_word(weighted_choice(self.rng, NEW_WORD_KINDS))

    def zipf_noun(self):
        """A known noun drawn with probability about 1/rank (sample nouns by frequency, then new words);
        render() draws the same way inline."""
        return self.nouns[int(math.exp(self.rng.random() * self.log_nouns)) - 1]

    def story_name(self):
        """A name for a new story: mostly a new one, else a name an earlier story made."""
        rng = self.rng
        if rng.random() < NEW_NAME_SHARE or not self.recent_names:
            self.budget = max(0, self.budget - 1)
            kind = weighted_choice(rng, NEW_NAME_KINDS)
            name = self.make_word(kind)
            if kind == "surname":
                long = FIRST_NAMES[int(rng.random() * len(FIRST_NAMES))] + " " + name
            else:
                long = name
            self.recent_names.append((name, long))
            return name, long
        # Recurring names: mostly recent ones (people in the news stay in the news for a while).
        index = len(self.recent_names) - 1 - int(rng.random() ** 3 * len(self.recent_names))
        return self.recent_names[index]

    # Text -------------------------------------------------------------------------------------------------
    #
    # Texts are built as (text, tokens) pairs. The vocabulary and token count are kept exactly as a
    # tokeniser of the output would see them (lower-cased \w+ runs of title and body), without tokenising
    # every article again: a sample sentence adds its own words the first time it is used, and every
    # swapped-in word adds itself. --verify re-reads the output and checks both figures.

    def count_word(self, word):
        """Adds an inserted word (or a first name and surname) to the vocabulary; returns its tokens."""
        if " " in word:
            parts = word.lower().split()
            self.types.update(parts)
            return len(parts)
        self.types.add(word.lower())
        return 1

    def count_fixed_text(self, text):
        """Adds the words of a fixed text (title suffix, agency line); returns its tokens."""
        words = TOKEN_RE.findall(text.lower())
        self.types.update(words)
        return len(words)

    def render(self, sentence, keys, noun_rate, word_rate, forced=()):
        """The sentence with some nouns and content words swapped, as (text, tokens). The forced terms take
        the first noun slots. While the vocabulary is behind the Heaps curve, nouns not swapped otherwise
        become new words."""
        rnd = self.rng.random
        types = self.types
        if not sentence.seen:
            sentence.seen = True
            types.update(sentence.fixed_words)
        tokens = sentence.token_count
        pieces = list(sentence.pieces)
        noun_slots = sentence.noun_slots
        for (index, _), term in zip(noun_slots, forced):
            pieces[index] = term
            tokens += self.count_word(term) - 1
        # A swapped noun is a key term of the story (the first ones more often, a person sometimes with
        # the first name), a new word while behind Heaps, or a Zipf draw.
        add = types.add
        for index, original in noun_slots[len(forced):]:
            if rnd() < noun_rate:
                if keys and rnd() < KEY_TERM_SHARE:
                    short, long = keys[int(rnd() ** 2 * len(keys))]
                    if long != short and rnd() < FULL_NAME_SHARE:
                        word = long
                        tokens += self.count_word(word) - 1
                    else:
                        word = short
                        add(word.lower())
                elif self.budget > 0:
                    word = self.new_noun()
                    add(word.lower())
                else:
                    word = self.nouns[int(math.exp(rnd() * self.log_nouns)) - 1]
                    add(word.lower())
                pieces[index] = word
            elif self.budget > 0:
                word = self.new_noun()
                add(word.lower())
                pieces[index] = word
            else:
                add(original)
        for index, original, candidates in sentence.word_slots:
            if rnd() < word_rate:
                original = candidates[int(rnd() * len(candidates))]
                pieces[index] = original
            add(original)
        return "".join(pieces), tokens

    def title(self, story):
        """A title from a sample title of the story's section, carrying one or two key terms."""
        rng = self.rng
        templates = self.by_section[story.section]
        sentence = templates[int(rng.random() * len(templates))].title
        key_count = 1 if rng.random() < 0.5 else 2
        forced = [story.keys[int(rng.random() ** 2 * len(story.keys))][0] for _ in range(key_count)]
        text, tokens = self.render(sentence, story.keys, TITLE_NOUN_SUBSTITUTION, TITLE_WORD_SUBSTITUTION, forced)
        if not sentence.noun_slots:
            key = story.keys[0][0]
            text = f"{key}: {text}"
            tokens += self.count_word(key)
        return text.strip(), tokens

    def body(self, story, first):
        """Body sentences as (text, tokens): as many as a sample article of the section has, drawn from the
        section's sentences, the lead naming the story's main key term; follow-ups repeat recap sentences."""
        rng = self.rng
        templates = self.by_section[story.section]
        template = templates[int(rng.random() * len(templates))]
        pool = self.sentence_pool[story.section]
        lead_term = story.keys[0][1]
        sentences = [self.render(template.sentences[0], story.keys, NOUN_SUBSTITUTION, WORD_SUBSTITUTION, (lead_term,))]
        used_recap = set()
        for _ in range(len(template.sentences) - 1):
            if not first and story.recap and rng.random() < RECAP_SHARE:
                index = int(rng.random() * len(story.recap))
                if index not in used_recap:
                    used_recap.add(index)
                    sentences.append(story.recap[index])
                    continue
            sentence = pool[int(rng.random() * len(pool))]
            sentences.append(self.render(sentence, story.keys, NOUN_SUBSTITUTION, WORD_SUBSTITUTION))
        return sentences

    def near_duplicate(self, story):
        """A re-published version of the story's previous article with small edits, as (title, sentences)."""
        rng = self.rng
        title, title_tokens = story.last_title
        if rng.random() < NEAR_DUPLICATE_TITLE_SUFFIX_SHARE:
            suffix = NEAR_DUPLICATE_TITLE_SUFFIXES[int(rng.random() * len(NEAR_DUPLICATE_TITLE_SUFFIXES))]
            title += suffix
            title_tokens += self.count_fixed_text(suffix)
        sentences = list(story.last_body)
        pool = self.sentence_pool[story.section]
        # One or two edits at distinct sentences, the later position first so the earlier stays in place.
        edits = min(len(sentences), 1 + int(rng.random() * 2))
        for position in sorted(rng.sample(range(len(sentences)), edits), reverse=True):
            edit = rng.random()
            if edit < 0.25 and len(sentences) > 3:
                del sentences[position]
                continue
            fresh = self.render(pool[int(rng.random() * len(pool))], story.keys, NOUN_SUBSTITUTION, WORD_SUBSTITUTION)
            if edit < 0.65:
                sentences[position] = fresh
            else:
                sentences.insert(position, fresh)
        if rng.random() < NEAR_DUPLICATE_AGENCY_LINE_SHARE:
            line = NEAR_DUPLICATE_AGENCY_LINES[int(rng.random() * len(NEAR_DUPLICATE_AGENCY_LINES))]
            sentences.append((line, self.count_fixed_text(line)))
        return (title, title_tokens), sentences

    # Stories ----------------------------------------------------------------------------------------------

    def story_length(self, long_runner):
        """Number of articles of a new story."""
        rng = self.rng
        if long_runner:
            return min(LONG_RUNNER_LEN_MAX, max(2, round(rng.lognormvariate(math.log(LONG_RUNNER_LEN_MEDIAN), LONG_RUNNER_LEN_SIGMA))))
        return min(STORY_LEN_MAX, max(1, round(rng.lognormvariate(math.log(STORY_LEN_MEDIAN), STORY_LEN_SIGMA))))

    def story_plan(self, length, long_runner):
        """Active-time offsets (seconds) of a story's articles and which of them are near-duplicates."""
        rng = self.rng
        gap_seconds = 3600 * (LONG_RUNNER_GAP_HOURS if long_runner else FOLLOW_UP_GAP_HOURS)
        offsets = [0.0]
        duplicates = [False]
        for _ in range(length - 1):
            if rng.random() < NEAR_DUPLICATE_SHARE:
                low, high = NEAR_DUPLICATE_GAP_MINUTES
                offsets.append(offsets[-1] + 60 * rng.uniform(low, high))
                duplicates.append(True)
            else:
                offsets.append(offsets[-1] + rng.expovariate(1 / gap_seconds))
                duplicates.append(False)
        longest = MAX_STORY_DAYS * ACTIVE_SECONDS_PER_DAY
        if offsets[-1] > longest:
            offsets = [offset * longest / offsets[-1] for offset in offsets]
        return offsets, duplicates

    def new_story(self, number, assigned):
        """Draws a story: section, length, start, plan; returns (story, start, offsets, duplicates)."""
        rng = self.rng
        template = self.templates[int(rng.random() * len(self.templates))]
        long_runner = rng.random() < LONG_RUNNER_SHARE
        length = min(self.story_length(long_runner), self.articles - assigned)
        offsets, duplicates = self.story_plan(length, long_runner)
        start_span = (SPAN_DAYS - MAX_STORY_DAYS) * ACTIVE_SECONDS_PER_DAY
        start = start_span * (assigned + rng.random() * length) / self.articles
        story = Story(f"{STORY_PREFIX}{number:07d}", template.section, [], length)
        self.story_lengths.append(length)
        self.story_spans_hours.append(offsets[-1] / 3600)
        return story, start, offsets, duplicates

    def choose_keys(self, story):
        """The key terms of a story, chosen when its first article is written (so new names count there)."""
        rng = self.rng
        keys = []
        for _ in range(rng.randint(*KEY_NAMES)):
            keys.append(self.story_name())
        for _ in range(rng.randint(*KEY_NOUNS)):
            noun = self.zipf_noun()
            keys.append((noun, noun))
        story.keys = keys

    def add_key(self, story):
        """A story develops: one more key term (a name, new while behind Heaps)."""
        story.keys.append(self.story_name())

    # Output -----------------------------------------------------------------------------------------------

    def article(self, story, kind, number, moment):
        """Writes one article of a story into a JSON line and updates the statistics."""
        self.start_article_budget()
        if kind == "first":
            self.choose_keys(story)
        elif kind == "follow-up" and self.rng.random() < NEW_KEY_TERM_SHARE:
            self.add_key(story)
        if kind == "duplicate":
            title, sentences = self.near_duplicate(story)
            self.near_duplicates += 1
        else:
            title = self.title(story)
            sentences = self.body(story, kind == "first")
            story.last_title = title
            story.last_body = sentences
        if kind == "first":
            story.recap = sentences
        self.tokens += title[1] + sum(tokens for _, tokens in sentences)
        title = title[0]
        body = " ".join(text for text, _ in sentences)
        identifier = f"{ID_PREFIX}{number:0{ID_DIGITS}d}"
        stamp = moment.isoformat()
        url = f"{URL_BASE}/{story.section.lower()}/{stamp[:10].replace('-', '/')}/{slug(title)}-{identifier}"
        row = {
            "id": identifier,
            "title": title,
            "body": body,
            "published_at": stamp + local_offset(moment),
            "section": story.section,
            "lang": "de",
            "url": url,
            "story": story.label,
            "category": story.section,
        }
        return json.dumps(row, ensure_ascii=False) + "\n"

    def run(self, out_path):
        """Writes the archive in time order; returns the Heaps checkpoints as (articles, tokens, types)."""
        checkpoints = sorted({max(1, round(self.articles / 2 ** step)) for step in range(HEAPS_CHECKPOINTS)})
        points = []
        events = []
        stories = {}
        assigned = 0
        story_number = 0
        sequence = 0
        pending = None
        written = 0
        batch = []
        started = time.perf_counter()
        with open(out_path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=raw, mtime=0) as out:
            while written < self.articles:
                if pending is None and assigned < self.articles:
                    story_number += 1
                    pending = self.new_story(story_number, assigned)
                    assigned += pending[0].remaining
                if pending is not None and (not events or pending[1] <= events[0][0]):
                    story, start, offsets, duplicates = pending
                    stories[story.label] = story
                    for index, (offset, duplicate) in enumerate(zip(offsets, duplicates)):
                        kind = "first" if index == 0 else "duplicate" if duplicate else "follow-up"
                        sequence += 1
                        heapq.heappush(events, (start + offset, sequence, story.label, kind))
                    pending = None
                    continue
                moment_seconds, _, label, kind = heapq.heappop(events)
                story = stories[label]
                written += 1
                batch.append(self.article(story, kind, written, active_to_datetime(moment_seconds)).encode("utf-8"))
                story.remaining -= 1
                if story.remaining == 0:
                    del stories[label]
                if len(batch) >= WRITE_BATCH:
                    out.write(b"".join(batch))
                    batch = []
                self.mean_tokens += (self.tokens / written - self.mean_tokens) * 0.01
                if written in checkpoints:
                    points.append((written, self.tokens, len(self.types)))
                if written % PROGRESS_EVERY == 0:
                    elapsed = time.perf_counter() - started
                    print(f"  {written:,} articles, {len(self.types):,} types, {elapsed:.0f} s", file=sys.stderr)
            out.write(b"".join(batch))
        return points


def report(generator, points, elapsed, cpu, out_path):
    """Prints the run's statistics to stderr."""
    written = generator.articles
    # The first articles still cover the sample's own vocabulary; fit past twice the sample's size.
    fit_points = [(tokens, types) for articles, tokens, types in points if articles >= 2 * generator.sample_articles]
    if len(fit_points) < 2:
        fit_points = [(tokens, types) for _, tokens, types in points]
    beta = fit_exponent(fit_points) if len(fit_points) >= 2 else float("nan")
    lengths = sorted(generator.story_lengths)
    multi_spans = sorted(span for span, length in zip(generator.story_spans_hours, generator.story_lengths) if length > 1)
    lines = [
        f"wrote {out_path}",
        f"articles written: {written:,}",
        f"distinct word types: {len(generator.types):,} (new words made: {generator.new_words:,})",
        f"tokens: {generator.tokens:,} ({generator.tokens / written:.0f} per article)",
        f"elapsed: {elapsed:.1f} s wall, {cpu:.1f} s CPU ({written / elapsed:,.0f} articles/s wall, {written / cpu:,.0f} per CPU-second)",
        f"near-duplicates: {generator.near_duplicates:,} ({100 * generator.near_duplicates / written:.1f} %)",
        f"stories: {len(lengths):,}; articles per story p50 {percentile(lengths, 0.5)}, p90 {percentile(lengths, 0.9)}, "
        f"p99 {percentile(lengths, 0.99)}, max {lengths[-1]}; single-article stories "
        f"{100 * sum(1 for n in lengths if n == 1) / len(lengths):.0f} %",
    ]
    if multi_spans:
        lines.append(
            f"story span (first to last article, active hours 06-24): p50 {percentile(multi_spans, 0.5):.0f} h, "
            f"p90 {percentile(multi_spans, 0.9):.0f} h, max {multi_spans[-1]:.0f} h"
        )
    lines.append("Heaps checkpoints (articles, tokens, types):")
    for articles, tokens, types in points:
        lines.append(f"  {articles:>10,} {tokens:>14,} {types:>12,}")
    lines.append(
        f"Heaps exponent fitted over the {len(fit_points)} last checkpoints: beta = {beta:.3f} "
        f"(target {generator.beta}, K = {generator.heaps_k:.1f})"
    )
    print("\n".join(lines), file=sys.stderr)


def verify(path, generator):
    """Re-reads the archive: recounts types and tokens with a tokeniser, checks ids, order and fields."""
    types = set()
    tokens = 0
    ids = set()
    previous = None
    in_order = True
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            words = TOKEN_RE.findall((row["title"] + " " + row["body"]).lower())
            tokens += len(words)
            types.update(words)
            ids.add(row["id"])
            moment = datetime.fromisoformat(row["published_at"])
            if previous is not None and moment < previous:
                in_order = False
            previous = moment
    same = len(types) == len(generator.types) and tokens == generator.tokens
    print(
        f"verify: {len(ids):,} unique ids, dates {'in' if in_order else 'NOT in'} order, "
        f"re-tokenised {len(types):,} types and {tokens:,} tokens ({'same as' if same else 'DIFFERENT from'} the count while writing)",
        file=sys.stderr,
    )
    return same and in_order and len(ids) == generator.articles


def main():
    """Parses the command line, generates the archive and reports."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, required=True, help="number of articles to write")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--out", type=Path, required=True, help="output file (.jsonl.gz)")
    parser.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE, help=f"sample to grow (default {DEFAULT_SAMPLE})")
    parser.add_argument("--verify", action="store_true", help="re-read the output and check its counts, ids and order")
    parser.add_argument("--heaps-beta", type=float, default=HEAPS_BETA, help=f"Heaps exponent (default {HEAPS_BETA})")
    args = parser.parse_args()
    if args.articles < 1:
        parser.error("--articles must be at least 1")
    if args.articles >= 10 ** ID_DIGITS:
        parser.error(f"--articles must be below {10 ** ID_DIGITS:,}")
    started = time.perf_counter()
    started_cpu = time.process_time()
    generator = Generator(read_sample(args.sample), args.articles, args.seed, args.heaps_beta)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    points = generator.run(args.out)
    report(generator, points, time.perf_counter() - started, time.process_time() - started_cpu, args.out)
    if args.verify and not verify(args.out, generator):
        sys.exit(1)


if __name__ == "__main__":
    main()
