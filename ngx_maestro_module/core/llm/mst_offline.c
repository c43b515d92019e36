/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The offline provider (see mst_offline.h): an extractive, deterministic
 * answer built from the request alone. Pure computation, no I/O, no shared
 * state: safe on any thread.
 *
 * 1. Question and sources. The question is the text of the last "user"
 *    message. When that message carries "### Source: NAME" sections, its
 *    first non-blank line is the question, the rest before the first section
 *    is a source named "prompt", and each section is a source. Every other
 *    message is a source named by its role ("system", "assistant", ...),
 *    split into its own "### Source:" sections the same way. Content may be
 *    a string or an array of {"type": "text", "text": ...} parts.
 *
 * 2. Sentences. Each source is cut into lines; a bullet ("- ", "* ", "+ ",
 *    "1. ", "1) ", U+2022) or heading ("#") line is one sentence; other lines
 *    form paragraphs (a line of 60 bytes or more that does not end a
 *    sentence runs on into the next one: hard-wrapped prose) that are split
 *    after '.', '!', '?' (not "e.g."-like abbreviations) and U+3002.
 *    Sentences of fewer than 20 characters are dropped; those over 400 are
 *    cut at a word boundary and end with "...".
 *
 * 3. Terms. Words are runs of ASCII letters and digits and of bytes >= 0x80
 *    (so a multibyte character is never split), ASCII case-folded. ASCII
 *    words need 3 characters and must not be stop words; a plural "s" is
 *    dropped. Words with non-ASCII characters need 2 characters. A question
 *    term matches a sentence word that equals it, or that starts with it
 *    when it is non-ASCII (Korean particles) or 5+ characters long.
 *
 * 4. Ranking: BM25 (k1 1.2, b 0.75, idf over the sentences), the top 6
 *    sentences with a positive score (ties: earlier first, duplicates
 *    skipped), printed in source order. Text of a system message outside
 *    "### Source:" sections is usually instructions (the llm plugin's
 *    system prompt): its sentences must match two question terms, and it
 *    alone does not count as context.
 *
 * With no sources (or only a system prompt that matches nothing), the
 * answer restates the question's clauses and its key terms; with sources
 * but no match, it names the terms looked for and the sources examined.
 * Cut points are always ASCII bytes or code point boundaries, so valid
 * UTF-8 in gives valid UTF-8 out.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mst_offline.h"
#include "mst_oai.h"


#define MST_OFFLINE_HEADER                                                    \
    "[maestro-offline] No LLM provider is configured; this answer is "       \
    "extracted from the request."

#define MST_OFFLINE_MAX_TERMS      32
#define MST_OFFLINE_MAX_WORD       64
#define MST_OFFLINE_MAX_SENTS      50000
#define MST_OFFLINE_MAX_NAME       100
#define MST_OFFLINE_TOP            6
#define MST_OFFLINE_MIN_CHARS      20
#define MST_OFFLINE_MAX_CHARS      400
#define MST_OFFLINE_WRAP_BYTES     60
#define MST_OFFLINE_MAX_CLAUSES    8
#define MST_OFFLINE_CLAUSE_CHARS   200
#define MST_OFFLINE_SOURCE_TAG     "### Source:"


typedef struct {
    char      *data;
    size_t     len;
    size_t     cap;
    int        failed;
} mst_offline_buf_t;


typedef struct {
    char      *text;                 /* normalised sentence */
    size_t     len;
    int        src;                  /* index into the source names */
    int        nwords;               /* words (terms) in the sentence */
    int        hits;                 /* distinct question terms in it */
    int        weak;                 /* system prompt text: instructions */
    int        tf[MST_OFFLINE_MAX_TERMS];
    double     score;
} mst_offline_sent_t;


typedef struct {
    char                *terms[MST_OFFLINE_MAX_TERMS];
    size_t               tlen[MST_OFFLINE_MAX_TERMS];
    int                  nterms;

    char               **names;      /* distinct source names, in order */
    int                  nnames;
    int                  cnames;

    mst_offline_sent_t  *sents;
    int                  nsents;
    int                  csents;

    /* while splitting: where new sentences go */
    int                  cur_src;
    int                  cur_weak;
    int                  strong;     /* a source that is not weak */
    int                  min_chars;
    int                  max_chars;

    int                  failed;
} mst_offline_ctx_t;


typedef void (*mst_offline_sent_pt)(mst_offline_ctx_t *ctx, const char *s,
    size_t len);


static void mst_offline_buf_add(mst_offline_buf_t *b, const char *s,
    size_t n);
static void mst_offline_buf_str(mst_offline_buf_t *b, const char *s);
static int mst_offline_word_char(unsigned char c);
static int mst_offline_space(unsigned char c);
static size_t mst_offline_chars(const char *s, size_t len);
static size_t mst_offline_cut(const char *s, size_t len, size_t max_chars);
static int mst_offline_stop(const char *w, size_t len);
static size_t mst_offline_norm_word(const char *s, size_t len, char *out,
    int *ascii);
static const char *mst_offline_next_word(const char *p, const char *end,
    const char **wend);
static int mst_offline_match(const char *q, size_t qlen, const char *w,
    size_t wlen);
static void mst_offline_add_term(mst_offline_ctx_t *ctx, const char *w,
    size_t len);
static void mst_offline_question_terms(mst_offline_ctx_t *ctx,
    const char *q, size_t len);
static int mst_offline_source(mst_offline_ctx_t *ctx, const char *name,
    size_t len);
static void mst_offline_add_sentence(mst_offline_ctx_t *ctx, const char *s,
    size_t len);
static void mst_offline_split_para(mst_offline_ctx_t *ctx, const char *s,
    size_t len, mst_offline_sent_pt add);
static void mst_offline_split_text(mst_offline_ctx_t *ctx, const char *s,
    size_t len, mst_offline_sent_pt add);
static void mst_offline_split_sections(mst_offline_ctx_t *ctx,
    const char *s, size_t len, const char *def_name);
static char *mst_offline_content(json_t *content);
static void mst_offline_score(mst_offline_ctx_t *ctx);
static double mst_offline_ln(double x);
static void mst_offline_answer_found(mst_offline_ctx_t *ctx,
    mst_offline_buf_t *out);
static int mst_offline_usable(mst_offline_ctx_t *ctx,
    mst_offline_sent_t *st);
static void mst_offline_answer_none(mst_offline_ctx_t *ctx,
    mst_offline_buf_t *out);
static void mst_offline_add_clause(mst_offline_ctx_t *ctx, const char *s,
    size_t len);
static void mst_offline_answer_alone(mst_offline_ctx_t *ctx,
    const char *q, size_t qlen, mst_offline_buf_t *out);
static void mst_offline_list_terms(mst_offline_ctx_t *ctx,
    mst_offline_buf_t *out);
static void mst_offline_list_sources(mst_offline_ctx_t *ctx,
    mst_offline_buf_t *out);
static int mst_offline_any_usable(mst_offline_ctx_t *ctx);
static void mst_offline_drop_sentences(mst_offline_ctx_t *ctx);
static void mst_offline_ctx_free(mst_offline_ctx_t *ctx);


static const char  *mst_offline_stop_words[] = {
    "about", "after", "all", "also", "and", "any", "are", "because", "been",
    "before", "being", "but", "can", "could", "describe", "did", "does",
    "each", "explain", "for", "from", "give", "had", "has", "have", "her",
    "here", "him", "his", "how", "into", "its", "just", "let", "like",
    "many", "more", "most", "much", "not", "now", "our", "out", "over",
    "please", "should", "show", "some", "such", "tell", "than", "that",
    "the", "their", "them", "then", "there", "these", "they", "this",
    "those", "through", "very", "want", "was", "were", "what", "when",
    "where", "which", "while", "who", "whom", "why", "will", "with",
    "would", "you", "your", NULL
};


/* runs on a pool thread: the offline provider's chat call */

int
mst_offline_chat(json_t *request, const mst_llm_call_t *call,
    json_t **response, char *err, size_t errlen)
{
    char        *answer, id[MST_ID_LEN + 1], cid[64];
    size_t       len, i, start;
    json_t      *resp;

    *response = NULL;

    if (!json_is_object(request)
        || !json_is_array(json_object_get(request, "messages"))
        || json_array_size(json_object_get(request, "messages")) == 0)
    {
        return mst_err(err, errlen, MST_EINVAL,
                       "llm chat: \"messages\" must be a non-empty array");
    }

    if (call != NULL && call->deadline != 0
        && mst_mono_ms() >= call->deadline)
    {
        return mst_err(err, errlen, MST_ETIMEDOUT,
                       "llm chat: the deadline passed before the call");
    }

    answer = mst_offline_answer(request);
    if (answer == NULL) {
        return mst_err(err, errlen, MST_ENOMEM, "offline answer: out of "
                       "memory");
    }

    len = strlen(answer);

    if (call != NULL && call->on_chunk != NULL) {
        /* word-sized pieces: a word and the spaces after it */
        i = 0;

        while (i < len) {
            start = i;

            while (i < len && answer[i] != ' ' && answer[i] != '\n') {
                i++;
            }

            while (i < len && (answer[i] == ' ' || answer[i] == '\n')) {
                i++;
            }

            if (call->cancelled != NULL
                && call->cancelled(call->cancel_arg) != 0)
            {
                free(answer);
                return mst_err(err, errlen, MST_ECANCELLED,
                               "offline answer: cancelled");
            }

            if (call->on_chunk(answer + start, i - start, call->chunk_arg)
                != 0)
            {
                free(answer);
                return mst_err(err, errlen, MST_ECANCELLED,
                               "offline answer: stopped by the chunk "
                               "callback");
            }
        }
    }

    mst_id_new(id);
    snprintf(cid, sizeof(cid), "chatcmpl-offline-%s", id + 3);

    resp = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s%}, s:s}]}",
                     "id", cid, "object", "chat.completion",
                     "created", (json_int_t) (mst_now_ms() / 1000),
                     "model", MST_OFFLINE_MODEL,
                     "choices", "index", 0, "message", "role", "assistant",
                     "content", answer, len, "finish_reason", "stop");
    free(answer);

    if (resp == NULL) {
        return mst_err(err, errlen, MST_ENOMEM, "offline answer: cannot "
                       "build the response");
    }

    /* usage: estimated, as for a provider that gave none */
    mst_oai_complete(resp, request, MST_OFFLINE_MODEL);

    *response = resp;
    return MST_OK;
}


char *
mst_offline_answer(json_t *request)
{
    char               *text, *q, *qtext;
    size_t              i, n, qlen, len;
    json_t             *messages, *msg, *role;
    const char         *r, *p, *end, *line_end;
    mst_offline_ctx_t   ctx;
    mst_offline_buf_t   out;
    long                last_user;
    int                 sections;

    memset(&ctx, 0, sizeof(ctx));
    memset(&out, 0, sizeof(out));
    qtext = NULL;
    q = NULL;
    qlen = 0;

    messages = json_is_object(request)
               ? json_object_get(request, "messages") : NULL;
    n = json_is_array(messages) ? json_array_size(messages) : 0;

    last_user = -1;

    for (i = 0; i < n; i++) {
        msg = json_array_get(messages, i);
        role = json_is_object(msg) ? json_object_get(msg, "role") : NULL;

        if (json_is_string(role) && strcmp(json_string_value(role), "user")
                                    == 0)
        {
            last_user = (long) i;
        }
    }

    /* sources: every message but the question, in order */

    ctx.min_chars = MST_OFFLINE_MIN_CHARS;
    ctx.max_chars = MST_OFFLINE_MAX_CHARS;

    for (i = 0; i < n; i++) {
        msg = json_array_get(messages, i);

        if (!json_is_object(msg)) {
            continue;
        }

        text = mst_offline_content(json_object_get(msg, "content"));
        if (text == NULL) {
            ctx.failed = 1;
            break;
        }

        if ((long) i != last_user) {
            role = json_object_get(msg, "role");
            r = json_is_string(role) ? json_string_value(role) : "message";
            mst_offline_split_sections(&ctx, text, strlen(text), r);
            free(text);
            continue;
        }

        qtext = text;
    }

    /* the question, and the last user message's own sources */

    if (qtext != NULL) {
        len = strlen(qtext);
        p = qtext;
        end = qtext + len;
        sections = 0;

        while (p < end) {
            line_end = memchr(p, '\n', end - p);
            if (line_end == NULL) {
                line_end = end;
            }

            if (strncmp(p, MST_OFFLINE_SOURCE_TAG,
                        sizeof(MST_OFFLINE_SOURCE_TAG) - 1) == 0)
            {
                sections = 1;
                break;
            }

            p = line_end + 1;
        }

        if (sections) {
            /* first non-blank line: the question */
            p = qtext;
            for ( ;; ) {
                line_end = memchr(p, '\n', end - p);
                if (line_end == NULL) {
                    line_end = end;
                }

                q = (char *) p;
                qlen = line_end - p;

                while (qlen > 0 && mst_offline_space(q[qlen - 1])) {
                    qlen--;
                }

                if (qlen > 0 || line_end == end) {
                    break;
                }

                p = line_end + 1;
            }

            if (strncmp(q, MST_OFFLINE_SOURCE_TAG,
                        sizeof(MST_OFFLINE_SOURCE_TAG) - 1) == 0)
            {
                /* the message starts with a section: no question line */
                qlen = 0;
                p = q;

            } else {
                p = line_end < end ? line_end + 1 : end;
            }

            mst_offline_split_sections(&ctx, p, end - p, "prompt");

        } else {
            q = qtext;
            qlen = len;
        }

        while (qlen > 0 && mst_offline_space(*q)) {
            q++;
            qlen--;
        }

        while (qlen > 0 && mst_offline_space(q[qlen - 1])) {
            qlen--;
        }

        mst_offline_question_terms(&ctx, q, qlen);
    }

    if (ctx.failed) {
        goto failed;
    }

    mst_offline_buf_str(&out, MST_OFFLINE_HEADER);

    if (qlen == 0) {
        mst_offline_buf_str(&out, "\nNo question was found in the request "
                            "(no user message with text).");
        if (ctx.nnames > 0) {
            mst_offline_buf_str(&out, "\nSources examined: ");
            mst_offline_list_sources(&ctx, &out);
            mst_offline_buf_str(&out, ".");
        }

    } else if (ctx.nnames == 0) {
        mst_offline_answer_alone(&ctx, q, qlen, &out);

    } else {
        mst_offline_score(&ctx);

        if (!ctx.strong && !mst_offline_any_usable(&ctx)) {
            /* only a system prompt: instructions, not context */
            mst_offline_drop_sentences(&ctx);
            mst_offline_answer_alone(&ctx, q, qlen, &out);

        } else {
            mst_offline_answer_found(&ctx, &out);
        }
    }

    if (ctx.failed || out.failed) {
        goto failed;
    }

    free(qtext);
    mst_offline_ctx_free(&ctx);
    return out.data;

failed:

    free(qtext);
    free(out.data);
    mst_offline_ctx_free(&ctx);
    return NULL;
}


/* a malloc()ed copy of a message content: string or text parts */

static char *
mst_offline_content(json_t *content)
{
    size_t              i;
    json_t             *part, *type, *text;
    mst_offline_buf_t   b;

    memset(&b, 0, sizeof(b));

    if (json_is_string(content)) {
        mst_offline_buf_add(&b, json_string_value(content),
                            json_string_length(content));

    } else if (json_is_array(content)) {
        json_array_foreach(content, i, part) {
            type = json_object_get(part, "type");
            text = json_object_get(part, "text");

            if (!json_is_string(text)
                || (type != NULL && !(json_is_string(type)
                    && strcmp(json_string_value(type), "text") == 0)))
            {
                continue;
            }

            if (b.len > 0) {
                mst_offline_buf_add(&b, "\n", 1);
            }

            mst_offline_buf_add(&b, json_string_value(text),
                                json_string_length(text));
        }
    }

    /* jansson strings may hold NUL: stop there, like strlen() users do */
    mst_offline_buf_add(&b, "", 1);

    if (b.failed) {
        free(b.data);
        return NULL;
    }

    return b.data;
}


static void
mst_offline_split_sections(mst_offline_ctx_t *ctx, const char *s,
    size_t len, const char *def_name)
{
    const char  *p, *end, *line_end, *start, *name, *t;
    size_t       nlen;
    int          src;

    p = s;
    end = s + len;
    start = s;
    name = def_name;
    nlen = strlen(def_name);

    for ( ;; ) {
        line_end = p < end ? memchr(p, '\n', end - p) : NULL;
        if (line_end == NULL) {
            line_end = end;
        }

        if (p == end
            || strncmp(p, MST_OFFLINE_SOURCE_TAG,
                       sizeof(MST_OFFLINE_SOURCE_TAG) - 1) == 0)
        {
            /* the section that ends here: only if it has text */
            src = -1;

            for (t = start; t < p; t++) {
                if (!mst_offline_space(*t)) {
                    src = mst_offline_source(ctx, name, nlen);
                    break;
                }
            }

            if (src >= 0) {
                ctx->cur_src = src;
                ctx->cur_weak = (start == s && strcmp(def_name, "system")
                                               == 0);
                ctx->strong |= !ctx->cur_weak;
                mst_offline_split_text(ctx, start, p - start,
                                       mst_offline_add_sentence);
            }

            if (p == end) {
                break;
            }

            name = p + sizeof(MST_OFFLINE_SOURCE_TAG) - 1;
            nlen = line_end - name;

            while (nlen > 0 && mst_offline_space(*name)) {
                name++;
                nlen--;
            }

            while (nlen > 0 && mst_offline_space(name[nlen - 1])) {
                nlen--;
            }

            if (nlen == 0) {
                name = "unnamed";
                nlen = sizeof("unnamed") - 1;
            }

            nlen = mst_offline_cut(name, nlen, MST_OFFLINE_MAX_NAME);

            start = line_end < end ? line_end + 1 : end;
        }

        p = line_end < end ? line_end + 1 : end;
    }
}


/* the index of a source name, added when new; -1 on ENOMEM */

static int
mst_offline_source(mst_offline_ctx_t *ctx, const char *name, size_t len)
{
    int     i, c;
    char  **names;

    for (i = 0; i < ctx->nnames; i++) {
        if (strlen(ctx->names[i]) == len
            && memcmp(ctx->names[i], name, len) == 0)
        {
            return i;
        }
    }

    if (ctx->nnames == ctx->cnames) {
        c = ctx->cnames ? ctx->cnames * 2 : 8;
        names = realloc(ctx->names, c * sizeof(char *));
        if (names == NULL) {
            ctx->failed = 1;
            return -1;
        }
        ctx->names = names;
        ctx->cnames = c;
    }

    ctx->names[ctx->nnames] = strndup(name, len);
    if (ctx->names[ctx->nnames] == NULL) {
        ctx->failed = 1;
        return -1;
    }

    return ctx->nnames++;
}


/* lines: bullets and headings alone, the rest as (wrapped) paragraphs */

static void
mst_offline_split_text(mst_offline_ctx_t *ctx, const char *s, size_t len,
    mst_offline_sent_pt add)
{
    const char         *p, *end, *line, *line_end;
    size_t              n, raw;
    unsigned char       last;
    mst_offline_buf_t   para;
    int                 bullet;

    memset(&para, 0, sizeof(para));

    p = s;
    end = s + len;

    while (p < end && !ctx->failed) {
        line_end = memchr(p, '\n', end - p);
        if (line_end == NULL) {
            line_end = end;
        }

        line = p;
        n = line_end - p;
        raw = n;
        p = line_end < end ? line_end + 1 : end;

        while (n > 0 && mst_offline_space(*line)) {
            line++;
            n--;
        }

        while (n > 0 && mst_offline_space(line[n - 1])) {
            n--;
        }

        bullet = 0;

        if (n >= 2 && (line[0] == '-' || line[0] == '*' || line[0] == '+')
            && line[1] == ' ')
        {
            bullet = 2;

        } else if (n >= 4 && memcmp(line, "\xe2\x80\xa2", 3) == 0
                   && line[3] == ' ')
        {
            bullet = 4;

        } else if (n > 0 && line[0] == '#') {
            bullet = 1;
            while (bullet < (int) n && line[bullet] == '#') {
                bullet++;
            }

        } else if (n > 0 && line[0] >= '0' && line[0] <= '9') {
            bullet = 1;
            while (bullet < (int) n && line[bullet] >= '0'
                   && line[bullet] <= '9')
            {
                bullet++;
            }

            if (bullet + 1 < (int) n
                && (line[bullet] == '.' || line[bullet] == ')')
                && line[bullet + 1] == ' ')
            {
                bullet += 2;

            } else {
                bullet = 0;
            }
        }

        if (n == 0 || bullet) {
            if (para.len > 0) {
                mst_offline_split_para(ctx, para.data, para.len, add);
                para.len = 0;
            }

            if (bullet) {
                add(ctx, line + bullet, n - bullet);
            }

            continue;
        }

        if (para.len > 0) {
            mst_offline_buf_add(&para, " ", 1);
        }

        mst_offline_buf_add(&para, line, n);

        /* a short line, or one that ends a sentence, ends the paragraph */
        last = (unsigned char) line[n - 1];

        if (raw < MST_OFFLINE_WRAP_BYTES || last == '.' || last == '!'
            || last == '?' || last == ':')
        {
            mst_offline_split_para(ctx, para.data, para.len, add);
            para.len = 0;
        }
    }

    if (para.failed) {
        ctx->failed = 1;

    } else if (para.len > 0) {
        mst_offline_split_para(ctx, para.data, para.len, add);
    }

    free(para.data);
}


/* split a paragraph after sentence ends */

static void
mst_offline_split_para(mst_offline_ctx_t *ctx, const char *s, size_t len,
    mst_offline_sent_pt add)
{
    const char     *p, *end, *start, *t;
    unsigned char   c;
    size_t          step;
    int             stop;

    p = s;
    end = s + len;
    start = s;

    while (p < end) {
        c = (unsigned char) *p;
        stop = 0;
        step = 1;

        if (c == '.' || c == '!' || c == '?') {
            stop = (p + 1 == end || mst_offline_space(p[1]));

            if (stop && c == '.') {
                /* "e.g.", "U.S.", "a.": the word before has a dot, or is
                 * one character long */
                t = p;
                while (t > start && !mst_offline_space(t[-1])) {
                    t--;
                }

                if (p - t <= 1 || memchr(t, '.', p - t) != NULL) {
                    stop = 0;
                }
            }

        } else if (c == 0xe3 && end - p >= 3
                   && (unsigned char) p[1] == 0x80
                   && (unsigned char) p[2] == 0x82)
        {
            stop = 1;           /* U+3002 IDEOGRAPHIC FULL STOP */
            step = 3;
        }

        p += step;

        if (stop || p >= end) {
            add(ctx, start, p - start);
            start = p;
        }
    }
}


/* normalise (trim, collapse spaces), check the length, keep */

static void
mst_offline_add_sentence(mst_offline_ctx_t *ctx, const char *s, size_t len)
{
    char                *text;
    size_t               i, n, chars, cut;
    int                  c;
    mst_offline_sent_t  *sents, *st;

    if (ctx->failed || ctx->nsents >= MST_OFFLINE_MAX_SENTS) {
        return;
    }

    text = malloc(len + 4);
    if (text == NULL) {
        ctx->failed = 1;
        return;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        if (mst_offline_space(s[i])) {
            if (n > 0 && text[n - 1] != ' ') {
                text[n++] = ' ';
            }
            continue;
        }

        text[n++] = s[i];
    }

    while (n > 0 && text[n - 1] == ' ') {
        n--;
    }

    chars = mst_offline_chars(text, n);

    if (chars < (size_t) ctx->min_chars) {
        free(text);
        return;
    }

    if (chars > (size_t) ctx->max_chars) {
        cut = mst_offline_cut(text, n, ctx->max_chars - 3);

        /* back to a word boundary if there is one not too far */
        for (i = cut; i > cut / 2; i--) {
            if (text[i - 1] == ' ') {
                cut = i - 1;
                break;
            }
        }

        n = cut;
        memcpy(text + n, "...", 3);
        n += 3;
    }

    text[n] = '\0';

    if (ctx->nsents == ctx->csents) {
        c = ctx->csents ? ctx->csents * 2 : 64;
        sents = realloc(ctx->sents, c * sizeof(mst_offline_sent_t));
        if (sents == NULL) {
            free(text);
            ctx->failed = 1;
            return;
        }
        ctx->sents = sents;
        ctx->csents = c;
    }

    st = &ctx->sents[ctx->nsents++];
    memset(st, 0, sizeof(mst_offline_sent_t));
    st->text = text;
    st->len = n;
    st->src = ctx->cur_src;
    st->weak = ctx->cur_weak;
}


static void
mst_offline_question_terms(mst_offline_ctx_t *ctx, const char *q,
    size_t len)
{
    const char  *p, *w, *wend, *end;

    p = q;
    end = q + len;

    while ((w = mst_offline_next_word(p, end, &wend)) != NULL) {
        p = wend;
        mst_offline_add_term(ctx, w, wend - w);
    }
}


static void
mst_offline_add_term(mst_offline_ctx_t *ctx, const char *w, size_t len)
{
    char    word[MST_OFFLINE_MAX_WORD + 1];
    size_t  wl;
    int     i, ascii;

    wl = mst_offline_norm_word(w, len, word, &ascii);
    if (wl == 0 || ctx->nterms == MST_OFFLINE_MAX_TERMS) {
        return;
    }

    for (i = 0; i < ctx->nterms; i++) {
        if (ctx->tlen[i] == wl && memcmp(ctx->terms[i], word, wl) == 0) {
            return;
        }
    }

    ctx->terms[ctx->nterms] = strndup(word, wl);
    if (ctx->terms[ctx->nterms] == NULL) {
        ctx->failed = 1;
        return;
    }

    ctx->tlen[ctx->nterms++] = wl;
}


/* the next word in [p, end), or NULL */

static const char *
mst_offline_next_word(const char *p, const char *end, const char **wend)
{
    const char  *w;

    while (p < end && !mst_offline_word_char((unsigned char) *p)) {
        p++;
    }

    if (p == end) {
        return NULL;
    }

    w = p;

    while (p < end && mst_offline_word_char((unsigned char) *p)) {
        p++;
    }

    *wend = p;
    return w;
}


/*
 * Case-fold a word into out, drop plurals; 0 when the word is not a term
 * (too short, a stop word, too long).
 */

static size_t
mst_offline_norm_word(const char *s, size_t len, char *out, int *ascii)
{
    size_t  i;

    if (len > MST_OFFLINE_MAX_WORD) {
        return 0;
    }

    *ascii = 1;

    for (i = 0; i < len; i++) {
        if ((unsigned char) s[i] >= 0x80) {
            *ascii = 0;
            out[i] = s[i];

        } else if (s[i] >= 'A' && s[i] <= 'Z') {
            out[i] = s[i] - 'A' + 'a';

        } else {
            out[i] = s[i];
        }
    }

    out[len] = '\0';

    if (!*ascii) {
        return mst_offline_chars(out, len) >= 2 ? len : 0;
    }

    if (len < 3 || mst_offline_stop(out, len)) {
        return 0;
    }

    if (len > 4 && out[len - 1] == 's' && out[len - 2] != 's') {
        out[--len] = '\0';
    }

    return len;
}


static int
mst_offline_match(const char *q, size_t qlen, const char *w, size_t wlen)
{
    if (wlen == qlen) {
        return memcmp(q, w, qlen) == 0;
    }

    if (wlen > qlen && memcmp(q, w, qlen) == 0) {
        /* a prefix: non-ASCII stems (particles), or long ASCII stems */
        return (unsigned char) q[0] >= 0x80 || (unsigned char) w[0] >= 0x80
               || qlen >= 5 || (unsigned char) w[qlen] >= 0x80;
    }

    return 0;
}


static int
mst_offline_stop(const char *w, size_t len)
{
    const char  **s;

    for (s = mst_offline_stop_words; *s != NULL; s++) {
        if (strlen(*s) == len && memcmp(*s, w, len) == 0) {
            return 1;
        }
    }

    return 0;
}


/* BM25 over the sentences */

static void
mst_offline_score(mst_offline_ctx_t *ctx)
{
    char                 word[MST_OFFLINE_MAX_WORD + 1];
    double               idf[MST_OFFLINE_MAX_TERMS], avg, norm, tf, k1, b;
    size_t               wl;
    long                 total;
    int                  i, t, df, ascii;
    const char          *p, *w, *wend, *end;
    mst_offline_sent_t  *st;

    k1 = 1.2;
    b = 0.75;
    total = 0;

    /* words and term frequencies of every sentence */

    for (i = 0; i < ctx->nsents; i++) {
        st = &ctx->sents[i];
        p = st->text;
        end = st->text + st->len;

        while ((w = mst_offline_next_word(p, end, &wend)) != NULL) {
            p = wend;
            wl = mst_offline_norm_word(w, wend - w, word, &ascii);
            if (wl == 0) {
                continue;
            }

            st->nwords++;

            for (t = 0; t < ctx->nterms; t++) {
                if (mst_offline_match(ctx->terms[t], ctx->tlen[t], word, wl))
                {
                    st->tf[t]++;
                }
            }
        }

        for (t = 0; t < ctx->nterms; t++) {
            st->hits += st->tf[t] > 0;
        }

        total += st->nwords;
    }

    avg = ctx->nsents ? (double) total / ctx->nsents : 1.0;
    if (avg <= 0) {
        avg = 1.0;
    }

    for (t = 0; t < ctx->nterms; t++) {
        df = 0;
        for (i = 0; i < ctx->nsents; i++) {
            df += ctx->sents[i].tf[t] > 0;
        }

        idf[t] = mst_offline_ln(1.0 + (ctx->nsents - df + 0.5) / (df + 0.5));
    }

    for (i = 0; i < ctx->nsents; i++) {
        norm = k1 * (1.0 - b + b * ctx->sents[i].nwords / avg);
        ctx->sents[i].score = 0;

        for (t = 0; t < ctx->nterms; t++) {
            tf = ctx->sents[i].tf[t];
            if (tf > 0) {
                ctx->sents[i].score += idf[t] * tf * (k1 + 1) / (tf + norm);
            }
        }
    }
}


/* natural logarithm, x > 0 (spares core a libm dependency) */

static double
mst_offline_ln(double x)
{
    double  y, y2, term, sum;
    int     k, i;

    k = 0;

    while (x >= 2.0) {
        x /= 2.0;
        k++;
    }

    while (x < 1.0) {
        x *= 2.0;
        k--;
    }

    /* ln(x) = 2 atanh((x - 1) / (x + 1)), x in [1, 2) */
    y = (x - 1.0) / (x + 1.0);
    y2 = y * y;
    term = y;
    sum = 0;

    for (i = 1; i < 40; i += 2) {
        sum += term / i;
        term *= y2;
    }

    return 2.0 * sum + k * 0.69314718055994530942;
}


static void
mst_offline_answer_found(mst_offline_ctx_t *ctx, mst_offline_buf_t *out)
{
    int   pick[MST_OFFLINE_TOP], npick, i, j, best, dup, s;
    char  chosen[MST_OFFLINE_MAX_SENTS / 8 + 1];

    memset(chosen, 0, sizeof(chosen));
    npick = 0;

    if (ctx->nterms == 0) {
        /* nothing to rank by: the sources' opening sentences */
        mst_offline_buf_str(out, "\nThe question has no searchable terms "
                            "(only short or common words); the sources "
                            "begin with:");

        for (i = 0; i < ctx->nsents && npick < 3; i++) {
            pick[npick++] = i;
        }

        if (npick == 0) {
            mst_offline_buf_str(out, "\n(no usable sentences)"
                                "\nSources examined: ");
            mst_offline_list_sources(ctx, out);
            mst_offline_buf_str(out, ".");
            return;
        }

        goto print;
    }

    while (npick < MST_OFFLINE_TOP) {
        best = -1;

        for (i = 0; i < ctx->nsents; i++) {
            if (!mst_offline_usable(ctx, &ctx->sents[i])
                || (chosen[i / 8] & (1 << (i % 8))))
            {
                continue;
            }

            if (best < 0 || ctx->sents[i].score > ctx->sents[best].score) {
                best = i;
            }
        }

        if (best < 0) {
            break;
        }

        chosen[best / 8] |= 1 << (best % 8);

        dup = 0;
        for (j = 0; j < npick; j++) {
            if (strcmp(ctx->sents[pick[j]].text, ctx->sents[best].text)
                == 0)
            {
                dup = 1;
                break;
            }
        }

        if (!dup) {
            pick[npick++] = best;
        }
    }

    if (npick == 0) {
        mst_offline_answer_none(ctx, out);
        return;
    }

    /* source order: sentence order is source order */
    for (i = 1; i < npick; i++) {
        s = pick[i];
        for (j = i; j > 0 && pick[j - 1] > s; j--) {
            pick[j] = pick[j - 1];
        }
        pick[j] = s;
    }

print:

    for (i = 0; i < npick; i++) {
        mst_offline_buf_str(out, "\n- ");
        mst_offline_buf_add(out, ctx->sents[pick[i]].text,
                            ctx->sents[pick[i]].len);
        mst_offline_buf_str(out, " (source: ");
        mst_offline_buf_str(out, ctx->names[ctx->sents[pick[i]].src]);
        mst_offline_buf_str(out, ")");
    }
}


/* a sentence worth quoting; system prompt text needs two terms */

static int
mst_offline_usable(mst_offline_ctx_t *ctx, mst_offline_sent_t *st)
{
    if (st->score <= 0) {
        return 0;
    }

    return !st->weak || st->hits >= (ctx->nterms < 2 ? ctx->nterms : 2);
}


static void
mst_offline_answer_none(mst_offline_ctx_t *ctx, mst_offline_buf_t *out)
{
    mst_offline_buf_str(out, "\nNone of the terms looked for (");
    mst_offline_list_terms(ctx, out);
    mst_offline_buf_str(out, ") appear in the sources examined: ");
    mst_offline_list_sources(ctx, out);
    mst_offline_buf_str(out, ".");
}


/* no sources: restate the question, clause by clause, and its terms */

static void
mst_offline_add_clause(mst_offline_ctx_t *ctx, const char *s, size_t len)
{
    const char  *p, *end, *start;

    /* clauses: sentences, further split on ';' */
    p = s;
    end = s + len;
    start = s;

    for ( ;; ) {
        if (p == end || *p == ';') {
            mst_offline_add_sentence(ctx, start, p - start);
            if (p == end) {
                break;
            }
            start = p + 1;
        }
        p++;
    }
}


static void
mst_offline_answer_alone(mst_offline_ctx_t *ctx, const char *q,
    size_t qlen, mst_offline_buf_t *out)
{
    int  i;

    mst_offline_buf_str(out, "\nNo context was provided with the request "
                        "(no documents, no earlier messages), so there is "
                        "nothing to extract an answer from.\n"
                        "Restating the request:");

    ctx->min_chars = 1;
    ctx->max_chars = MST_OFFLINE_CLAUSE_CHARS;
    ctx->cur_src = 0;

    mst_offline_split_text(ctx, q, qlen, mst_offline_add_clause);

    for (i = 0; i < ctx->nsents && i < MST_OFFLINE_MAX_CLAUSES; i++) {
        mst_offline_buf_str(out, "\n- ");
        mst_offline_buf_add(out, ctx->sents[i].text, ctx->sents[i].len);
    }

    if (ctx->nsents > MST_OFFLINE_MAX_CLAUSES) {
        mst_offline_buf_str(out, "\n- ...");
    }

    mst_offline_buf_str(out, "\nKey terms: ");

    if (ctx->nterms == 0) {
        mst_offline_buf_str(out, "none");

    } else {
        mst_offline_list_terms(ctx, out);
    }

    mst_offline_buf_str(out, ".");
}


static void
mst_offline_list_terms(mst_offline_ctx_t *ctx, mst_offline_buf_t *out)
{
    int  i;

    for (i = 0; i < ctx->nterms; i++) {
        if (i > 0) {
            mst_offline_buf_str(out, ", ");
        }
        mst_offline_buf_add(out, ctx->terms[i], ctx->tlen[i]);
    }
}


static void
mst_offline_list_sources(mst_offline_ctx_t *ctx, mst_offline_buf_t *out)
{
    int  i;

    for (i = 0; i < ctx->nnames; i++) {
        if (i > 0) {
            mst_offline_buf_str(out, ", ");
        }
        mst_offline_buf_str(out, ctx->names[i]);
    }
}


static int
mst_offline_any_usable(mst_offline_ctx_t *ctx)
{
    int  i;

    for (i = 0; i < ctx->nsents; i++) {
        if (mst_offline_usable(ctx, &ctx->sents[i])) {
            return 1;
        }
    }

    return 0;
}


static void
mst_offline_drop_sentences(mst_offline_ctx_t *ctx)
{
    int  i;

    for (i = 0; i < ctx->nsents; i++) {
        free(ctx->sents[i].text);
    }

    ctx->nsents = 0;
}


static void
mst_offline_ctx_free(mst_offline_ctx_t *ctx)
{
    int  i;

    for (i = 0; i < ctx->nterms; i++) {
        free(ctx->terms[i]);
    }

    for (i = 0; i < ctx->nnames; i++) {
        free(ctx->names[i]);
    }

    for (i = 0; i < ctx->nsents; i++) {
        free(ctx->sents[i].text);
    }

    free(ctx->names);
    free(ctx->sents);
}


static int
mst_offline_word_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c >= 0x80;
}


static int
mst_offline_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
           || c == '\v';
}


/* code points in s (continuation bytes not counted) */

static size_t
mst_offline_chars(const char *s, size_t len)
{
    size_t  i, n;

    n = 0;

    for (i = 0; i < len; i++) {
        n += ((unsigned char) s[i] & 0xc0) != 0x80;
    }

    return n;
}


/* the byte length of at most max_chars code points of s */

static size_t
mst_offline_cut(const char *s, size_t len, size_t max_chars)
{
    size_t  i, n;

    n = 0;

    for (i = 0; i < len; i++) {
        if (((unsigned char) s[i] & 0xc0) != 0x80) {
            if (n == max_chars) {
                return i;
            }
            n++;
        }
    }

    return len;
}


static void
mst_offline_buf_add(mst_offline_buf_t *b, const char *s, size_t n)
{
    char    *d;
    size_t   cap;

    if (b->failed) {
        return;
    }

    if (b->len + n + 1 > b->cap) {
        cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }

        d = realloc(b->data, cap);
        if (d == NULL) {
            b->failed = 1;
            return;
        }

        b->data = d;
        b->cap = cap;
    }

    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}


static void
mst_offline_buf_str(mst_offline_buf_t *b, const char *s)
{
    mst_offline_buf_add(b, s, strlen(s));
}
