/*
 * builtin.c — deterministic generated corpora ("builtin:NAME").
 *
 * `prose` is English-like ASCII text built so that a byte-level model has something to learn at
 * every range:
 *   - local structure: a fixed vocabulary of pseudo-words made of syllables, drawn with Zipf-like
 *     frequencies (shorter words more frequent), sentences from a small grammar with function
 *     words, capitals and punctuation, a handful of recurring phrase templates, and paragraphs
 *     separated by blank lines;
 *   - paragraph-range structure: each paragraph picks a tense that every verb in it carries, and
 *     introduces a few "entity" names (random letter strings, never in the vocabulary) that recur
 *     throughout it and sometimes in later paragraphs;
 *   - long-range copies: now and then a sentence, or a whole earlier paragraph, that started
 *     200..4000 bytes back is repeated verbatim. Only a model that can look that far back can
 *     predict those bytes, so context beyond the training length actually helps.
 *
 * Everything is driven by the Rng from core.h with integer arithmetic (plus correctly rounded
 * IEEE divisions for the Zipf weights), so the same seed gives the same bytes on every machine.
 * The vocabulary comes from a fixed seed: every corpus seed speaks the same language. Bytes are
 * final once written, so a corpus of n bytes is a prefix of every longer one with the same seed.
 */
#include <stdio.h>
#include <string.h>

#include "data/data.h"

/* ---- vocabulary ---------------------------------------------------------------------------- */

enum { W_NOUN, W_VERB, W_ADJ, W_ADV, W_CLASSES };

#define VOCAB_SEED 0x70726f7365ULL /* "prose": the language is fixed, the text varies by seed */
#define WORD_CAP 24                /* longest word incl. suffix and NUL */
#define CLASS_MAX 160

static const int class_size[W_CLASSES] = {160, 90, 70, 30};

static const char *const onsets[] = {
    "b", "c", "d", "f", "g", "h", "l", "m", "n", "p", "r", "s", "t", "v", "w",
    "br", "cr", "dr", "fl", "gr", "pl", "st", "th", "sh", "ch", "tr", "sl", "",
};
static const char *const nuclei[] = {"a", "e", "i", "o", "u", "a", "e", "o", "ea", "ou", "ai", "ie"};
static const char *const codas[] = {"", "", "", "", "n", "r", "s", "l", "m", "t", "nd", "st", "ng", "rk"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
    char text[CLASS_MAX][WORD_CAP];
    uint8_t len[CLASS_MAX];
    uint32_t cdf[CLASS_MAX]; /* cumulative Zipf weights */
    int n;
} WordClass;

static size_t append(char *dst, size_t len, size_t cap, const char *s) {
    while (*s && len + 1 < cap) dst[len++] = *s++;
    dst[len] = '\0';
    return len;
}

/* Builds one class: words of 1..3 syllables, sorted by length so rank 0 is shortest, then Zipf
   weights 1/(rank + 1.5). Adverbs get "ly". */
static void build_class(WordClass *wc, int n, int cls, Rng *rng) {
    wc->n = n;
    for (int i = 0; i < n; i++) {
        char *w = wc->text[i];
        size_t len = 0;
        w[0] = '\0';
        uint32_t r = rng_below(rng, 10);
        int syl = r < 3 ? 1 : r < 8 ? 2 : 3;
        for (int k = 0; k < syl; k++) {
            len = append(w, len, 12, onsets[rng_below(rng, COUNT(onsets))]);
            len = append(w, len, 12, nuclei[rng_below(rng, COUNT(nuclei))]);
            if (k == syl - 1 || rng_below(rng, 3) == 0)
                len = append(w, len, 12, codas[rng_below(rng, COUNT(codas))]);
        }
        if (cls == W_ADV) len = append(w, len, WORD_CAP, "ly");
        wc->len[i] = (uint8_t)len;
    }
    /* Stable insertion sort by length: shorter words are the frequent ones. */
    for (int i = 1; i < n; i++) {
        char t[WORD_CAP];
        uint8_t tl = wc->len[i];
        memcpy(t, wc->text[i], WORD_CAP);
        int j = i - 1;
        while (j >= 0 && wc->len[j] > tl) {
            memcpy(wc->text[j + 1], wc->text[j], WORD_CAP);
            wc->len[j + 1] = wc->len[j];
            j--;
        }
        memcpy(wc->text[j + 1], t, WORD_CAP);
        wc->len[j + 1] = tl;
    }
    uint32_t acc = 0;
    for (int i = 0; i < n; i++) {
        acc += (uint32_t)(1000000.0 / ((double)i + 1.5));
        wc->cdf[i] = acc;
    }
}

static int zipf_pick(const WordClass *wc, Rng *rng) {
    uint32_t r = rng_below(rng, wc->cdf[wc->n - 1]);
    int lo = 0, hi = wc->n - 1;
    while (lo < hi) { /* first index with cdf > r */
        int mid = (lo + hi) / 2;
        if (wc->cdf[mid] > r) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

static const char *const determiners[] = {"the", "the", "the", "a", "a", "this", "every", "some", "that", "no"};
static const char *const prepositions[] = {"of", "of", "in", "in", "on", "with", "from", "under", "near",
                                           "beyond", "across", "for"};
static const char *const conjunctions[] = {"and", "and", "but", "while", "because", "so"};
static const char *const pronouns[] = {"it", "they", "she", "he", "we"};

/* ---- generator state ----------------------------------------------------------------------- */

#define ENTITY_CAP 12
#define PARA_ENTITIES 5
#define POOL 64   /* entities remembered across paragraphs */
#define SPANS 512 /* ring of recent sentence and paragraph spans */
#define COPY_MIN 200
#define COPY_MAX 4000

typedef struct {
    size_t start, end;
} Span;

typedef struct {
    uint8_t *out;
    size_t n, pos;
    Rng rng;
    WordClass cls[W_CLASSES];
    int past_tense;
    int at_start; /* the next word starts a sentence */
    char ent[PARA_ENTITIES][ENTITY_CAP];
    int n_ent;
    char pool[POOL][ENTITY_CAP];
    int n_pool; /* total ever added; slot = i % POOL */
    Span sent[SPANS], para[SPANS];
    size_t n_sent, n_para;
} Gen;

static void emit(Gen *g, const char *s, size_t len) {
    size_t room = g->n - g->pos;
    if (len > room) len = room;
    memcpy(g->out + g->pos, s, len);
    g->pos += len;
}

static void emit_str(Gen *g, const char *s) { emit(g, s, strlen(s)); }
/* Emits a word (or several): after a space, except at the start of a sentence, where the first
   letter is capitalised instead. */
static void emit_word(Gen *g, const char *s, size_t len) {
    if (!g->at_start) {
        emit(g, " ", 1);
        emit(g, s, len);
        return;
    }
    g->at_start = 0;
    char c = s[0] >= 'a' && s[0] <= 'z' ? (char)(s[0] - 'a' + 'A') : s[0];
    emit(g, &c, 1);
    emit(g, s + 1, len - 1);
}
static void emit_words(Gen *g, const char *s) { emit_word(g, s, strlen(s)); }
static int chance(Gen *g, uint32_t percent) { return rng_below(&g->rng, 100) < percent; }

#define PICK(g, arr) ((arr)[rng_below(&(g)->rng, COUNT(arr))])

static void emit_content(Gen *g, int cls) {
    const WordClass *wc = &g->cls[cls];
    int i = zipf_pick(wc, &g->rng);
    emit_word(g, wc->text[i], wc->len[i]);
}

/* A verb in the paragraph's tense: "dorned" or "dorns". */
static void emit_verb(Gen *g) {
    emit_content(g, W_VERB);
    emit_str(g, g->past_tense ? "ed" : "s");
}

/* Earlier entities are mentioned more often than later ones (a Zipf-like preference). */
static void emit_entity(Gen *g) {
    int i = (int)rng_below(&g->rng, (uint32_t)g->n_ent);
    if (i > 0 && chance(g, 40)) i = 0;
    emit_words(g, g->ent[i]);
}

static void new_entity(Gen *g, char *name) {
    int len = 4 + (int)rng_below(&g->rng, 5);
    name[0] = (char)('A' + rng_below(&g->rng, 26));
    for (int i = 1; i < len; i++) name[i] = (char)('a' + rng_below(&g->rng, 26));
    name[len] = '\0';
    memcpy(g->pool[g->n_pool % POOL], name, ENTITY_CAP);
    g->n_pool++;
}

static void emit_np(Gen *g, int depth, int subject) {
    if (g->n_ent && chance(g, 30)) {
        emit_entity(g);
        return;
    }
    if (subject && chance(g, 10)) {
        emit_words(g, PICK(g, pronouns));
        return;
    }
    emit_words(g, PICK(g, determiners));
    if (chance(g, 35)) emit_content(g, W_ADJ);
    emit_content(g, W_NOUN);
    if (depth == 0 && chance(g, 15)) {
        emit_words(g, PICK(g, prepositions));
        emit_np(g, depth + 1, 0);
    }
}

static void emit_clause(Gen *g) {
    emit_np(g, 0, 1);
    emit_verb(g);
    uint32_t r = rng_below(&g->rng, 100);
    if (r < 50) {
        emit_np(g, 0, 0);
    } else if (r < 75) {
        emit_words(g, PICK(g, prepositions));
        emit_np(g, 0, 0);
    } else if (r < 90) {
        emit_content(g, W_ADV);
    }
    if (chance(g, 20)) {
        emit_words(g, PICK(g, prepositions));
        emit_np(g, 1, 0);
    }
}

/* Recurring phrase templates: fixed wording around open slots. */
static void emit_template(Gen *g) {
    char year[8];
    switch (rng_below(&g->rng, 5)) {
    case 0:
        snprintf(year, sizeof year, "%u,", 1000 + rng_below(&g->rng, 1000));
        emit_words(g, "in the year");
        emit_words(g, year);
        emit_clause(g);
        break;
    case 1:
        emit_words(g, "it is said that");
        emit_clause(g);
        break;
    case 2:
        emit_words(g, "according to");
        emit_np(g, 1, 0);
        emit_str(g, ",");
        emit_words(g, "the");
        emit_content(g, W_NOUN);
        emit_words(g, "is");
        emit_content(g, W_ADJ);
        break;
    case 3:
        emit_np(g, 1, 1);
        emit_words(g, "and");
        emit_np(g, 1, 0);
        emit_verb(g);
        emit_words(g, "together");
        break;
    default:
        emit_words(g, "nobody knew why the");
        emit_content(g, W_NOUN);
        emit_words(g, "of");
        emit_np(g, 1, 0);
        emit_words(g, "was so");
        emit_content(g, W_ADJ);
        break;
    }
}

/* Picks a span from the ring that started COPY_MIN..COPY_MAX bytes back; 0 if none. */
static int pick_span(Gen *g, const Span *ring, size_t count, Span *out) {
    size_t lo = count > SPANS ? count - SPANS : 0, cand = 0;
    for (size_t i = count; i-- > lo;) {
        size_t back = g->pos - ring[i % SPANS].start;
        if (back > COPY_MAX) break;
        if (back >= COPY_MIN) cand++;
    }
    if (!cand) return 0;
    uint32_t k = rng_below(&g->rng, (uint32_t)cand);
    for (size_t i = count; i-- > lo;) {
        size_t back = g->pos - ring[i % SPANS].start;
        if (back >= COPY_MIN && back <= COPY_MAX && k-- == 0) {
            *out = ring[i % SPANS];
            return 1;
        }
    }
    return 0;
}

/* Copies out[span] to the end; the source lies wholly before pos, so the ranges never overlap. */
static void emit_copy(Gen *g, Span sp) { emit(g, (const char *)g->out + sp.start, sp.end - sp.start); }

static void push_span(Span *ring, size_t *count, size_t start, size_t end) {
    ring[*count % SPANS] = (Span){start, end};
    (*count)++;
}

static void emit_sentence(Gen *g, int first) {
    if (!first) emit(g, " ", 1);
    size_t start = g->pos;
    Span sp;
    if (chance(g, 7) && pick_span(g, g->sent, g->n_sent, &sp)) {
        emit_copy(g, sp);
    } else {
        g->at_start = 1;
        if (chance(g, 15)) {
            emit_template(g);
        } else {
            emit_clause(g);
            if (chance(g, 25)) {
                emit_str(g, ",");
                emit_words(g, PICK(g, conjunctions));
                emit_clause(g);
            }
        }
        uint32_t r = rng_below(&g->rng, 100);
        emit_str(g, r < 85 ? "." : r < 93 ? "?" : "!");
    }
    if (g->pos > start) push_span(g->sent, &g->n_sent, start, g->pos);
}

static void emit_paragraph(Gen *g) {
    size_t start = g->pos;
    Span sp;
    if (chance(g, 4) && pick_span(g, g->para, g->n_para, &sp)) {
        emit_copy(g, sp);
    } else {
        g->past_tense = (int)rng_below(&g->rng, 2);
        g->n_ent = 2 + (int)rng_below(&g->rng, 3);
        for (int i = 0; i < g->n_ent; i++) new_entity(g, g->ent[i]);
        if (g->n_pool > g->n_ent && chance(g, 50)) {
            /* Someone from an earlier paragraph returns, and leads. `older` counts the earlier
               entities still in the pool ring. */
            int older = g->n_pool - g->n_ent;
            if (older > POOL - g->n_ent) older = POOL - g->n_ent;
            int back = g->n_ent + (int)rng_below(&g->rng, (uint32_t)older);
            memmove(g->ent[1], g->ent[0], (size_t)g->n_ent * ENTITY_CAP);
            memcpy(g->ent[0], g->pool[(g->n_pool - 1 - back) % POOL], ENTITY_CAP);
            g->n_ent++;
        }
        int sentences = 4 + (int)rng_below(&g->rng, 6);
        for (int i = 0; i < sentences && g->pos < g->n; i++) emit_sentence(g, i == 0);
    }
    if (g->pos > start) push_span(g->para, &g->n_para, start, g->pos);
    emit_str(g, "\n\n");
}

static void generate_prose(uint64_t seed, uint8_t *out, size_t n) {
    /* ~40 KB of state: the stack has room, and it spares an allocation failure path. */
    Gen g;
    memset(&g, 0, sizeof g);
    g.out = out;
    g.n = n;
    Rng vocab;
    rng_seed(&vocab, VOCAB_SEED);
    for (int c = 0; c < W_CLASSES; c++) build_class(&g.cls[c], class_size[c], c, &vocab);
    rng_seed(&g.rng, seed);
    while (g.pos < g.n) emit_paragraph(&g);
}

/* ---- registry ------------------------------------------------------------------------------ */

static const char *const builtin_names[] = {"prose", NULL};

const char *const *data_builtin_names(void) { return builtin_names; }

int data_builtin_generate(const char *name, uint64_t seed, uint8_t *out, size_t n, char *err) {
    if (name && strcmp(name, "prose") == 0) {
        generate_prose(seed, out, n);
        return CB_OK;
    }
    return cb_error(err, CB_EINPUT, "unknown built-in corpus '%s' (known: prose)", name ? name : "(null)");
}
