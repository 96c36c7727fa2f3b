"""The C prelude's layer kernels: ``matvec``, ``vecmat`` and ``outer`` on blocks of rows
(:mod:`graphc.codegen.c_blocks`) and on one row, text that :mod:`graphc.codegen.c_runtime`
puts in every generated file's prelude.

**Blocks of rows at the machine's peak.**  A vector holds ``GC_V`` doubles (8 with
AVX-512, else 4); a block of rows (:mod:`graphc.codegen.c_blocks`) is two vectors,
``GC_B = 2 * GC_V`` rows, so each weight a layer op reads serves twice as many rows and is
broadcast once for two multiplies.  ``gc_blin`` (matvec and vecmat of a block) keeps four
outputs of both vectors -- eight sums, enough to hide an add's latency -- in registers for
a chunk of ``GC_CHUNK`` terms, and carries them in ``y`` from chunk to chunk, so the
block's inputs stay in L1 for every output; ``gc_bouter_add`` (a weight gradient summed
over the block's rows) keeps eight sums of four rows of ``y`` and two vectors of columns;
``gc_bouter_add_biased`` adds ``d + product`` in each row instead, for a bias ``d`` the same
in every row (an L2 term's gradient), as the scalar program adds the two parts of the
weight's gradient.
Every sum still adds its terms one by one, in its op's order, each product rounded: the
vectors only put independent sums (rows, outputs, columns) side by side.

**One row at vector speed.**  The row loop (every row of a batch of one) calls the layer
helpers ``gc_matvec_t``, ``gc_vecmat`` and ``gc_outer_add`` on one row; they put ``GC_V``
consecutive *outputs* in a vector, so a vector lane is one output's own sum, added in its
op's order: the same additions as a scalar loop, only side by side.  ``gc_lin`` keeps twelve
vectors of outputs in registers per pass over the terms (so a layer of up to 12 * GC_V
outputs reads each row of its matrix once, in order), then four for the rest.

**Remainders without a scalar tail.**  Where the number of outputs is not a multiple of a
pass, the last pass starts before the end and so recomputes a few outputs of the pass
before it, with the same operations in the same order, hence the same bits.  Where the
sums live in memory between passes (``gc_outer_into``, ``gc_bouter_add``, the chunks of
``gc_blin``) such a pass stores only the outputs no other pass has written, or (in
``gc_outer_into``) reads its row before the others write it and is stored last.
``gc_outer_first`` writes ``0.0 + product`` into a sum the
writer did not zero (:data:`graphc.codegen.c_sums.FIRST_WRITES`); ``gc_outer_step`` writes
the params after train's step with that gradient instead (:mod:`graphc.codegen.c_sums`).
"""

BLOCKS = r"""
/* Blocks of GC_B rows (see graphc/codegen/c_blocks.py): a value that varies across rows holds
   the block's rows side by side, lane by lane (v[lane * GC_B + rb]), so one vector operation
   does one step of GC_V rows' sums, each row's additions in its own order.  A block is two
   vectors (GC_B = 2 * GC_V rows): each weight a layer op reads serves twice as many rows. */
#if defined(__AVX512F__)
#define GC_V 8   /* doubles in a vector register */
#else
#define GC_V 4
#endif
#define GC_B (2 * GC_V)
#if defined(__GNUC__) && !defined(GC_PORTABLE)  /* GNU vector extensions (gcc, clang) */
typedef double gc_vec __attribute__((vector_size(GC_V * sizeof(double))));
#define GC_ADD(a, b) ((a) + (b))
#define GC_MULS(s, v) ((s) * (v))  /* scalar times each lane */
#define GC_MULV(v, s) ((v) * (s))
#define GC_SUB(a, b) ((a) - (b))
#define GC_NEG(a) (-(a))
static inline gc_vec gc_splat(double s) { gc_vec v; for (int q = 0; q < GC_V; q++) v[q] = s; return v; }
#else
typedef struct { double lane[GC_V]; } gc_vec;
static inline gc_vec gc_vadd(gc_vec a, gc_vec b) { for (int q = 0; q < GC_V; q++) a.lane[q] = a.lane[q] + b.lane[q]; return a; }
static inline gc_vec gc_vmuls(double s, gc_vec v) { for (int q = 0; q < GC_V; q++) v.lane[q] = s * v.lane[q]; return v; }
static inline gc_vec gc_vmulv(gc_vec v, double s) { for (int q = 0; q < GC_V; q++) v.lane[q] = v.lane[q] * s; return v; }
static inline gc_vec gc_vsub(gc_vec a, gc_vec b) { for (int q = 0; q < GC_V; q++) a.lane[q] = a.lane[q] - b.lane[q]; return a; }
static inline gc_vec gc_vneg(gc_vec a) { for (int q = 0; q < GC_V; q++) a.lane[q] = -a.lane[q]; return a; }
static inline gc_vec gc_splat(double s) { gc_vec v; for (int q = 0; q < GC_V; q++) v.lane[q] = s; return v; }
#define GC_ADD(a, b) gc_vadd(a, b)
#define GC_MULS(s, v) gc_vmuls(s, v)
#define GC_MULV(v, s) gc_vmulv(v, s)
#define GC_SUB(a, b) gc_vsub(a, b)
#define GC_NEG(a) gc_vneg(a)
#endif
static inline int gc_min(int a, int b) { return a < b ? a : b; }
static inline gc_vec gc_load(const double *p) { gc_vec v; memcpy(&v, p, sizeof v); return v; }
static inline void gc_store(double *p, gc_vec v) { memcpy(p, &v, sizeof v); }
static inline gc_vec gc_start(const double *b, int bj, int bb, int o, int half)
{   /* a sum's first term for output o: b[o * bj] in every row (bb = 0), or the rows' own (bb = 1), of
       the block's first (half = 0) or second (half = GC_V) vector of rows */
    return bb ? gc_load(b + o * bj + half) : gc_splat(b[o * bj]);
}

#define GC_CHUNK 128  /* inputs of gc_blin whose vectors stay in L1 */

static inline void gc_blin_tail(double *y, const double *b, int bj, int bb, const double *M, int mo, int mi,
                                const double *x, int n, int down, int o, int outs, int at, int end)
{   /* gc_blin's last outputs o .. o + outs - 1 (outs < 4), terms at .. end - 1 */
    for (int q = 0; q < outs; q++) {
        gc_vec a0, h0;
        a0 = at ? gc_load(y + (o + q) * GC_B) : gc_start(b, bj, bb, o + q, 0);
        h0 = at ? gc_load(y + (o + q) * GC_B + GC_V) : gc_start(b, bj, bb, o + q, GC_V);
        const long first = down ? n - 1 - at : at, x_step = down ? -GC_B : GC_B, m_step = down ? -(long)mi : mi;
        long xo = first * GC_B, mo_at = (long)(o + q) * mo + first * mi;
        for (int t = at; t < end; t++, xo += x_step, mo_at += m_step) {
            const double mw = M[mo_at];
            a0 = GC_ADD(a0, GC_MULS(mw, gc_load(x + xo)));
            h0 = GC_ADD(h0, GC_MULS(mw, gc_load(x + xo + GC_V)));
        }
        gc_store(y + (o + q) * GC_B, a0); gc_store(y + (o + q) * GC_B + GC_V, h0);
    }
}

static inline void gc_blin_four(double *y, const double *b, int bj, int bb, const double *M, int mo, int mi,
                                const double *x, int n, int down, int o, int keep, int at, int end)
{   /* gc_blin's outputs o .. o + 3, terms at .. end - 1: eight sums in flight; only outputs o + keep .. o + 3
       are stored (the others, when keep > 0, another pass has taken further in y) */
    gc_vec a0, h0, a1, h1, a2, h2, a3, h3;
    if (at) {
        double *out = y + o * GC_B;
        a0 = gc_load(out); h0 = gc_load(out + GC_V); a1 = gc_load(out + GC_B); h1 = gc_load(out + GC_B + GC_V);
        a2 = gc_load(out + 2 * GC_B); h2 = gc_load(out + 2 * GC_B + GC_V);
        a3 = gc_load(out + 3 * GC_B); h3 = gc_load(out + 3 * GC_B + GC_V);
    } else {
        a0 = gc_start(b, bj, bb, o, 0); h0 = gc_start(b, bj, bb, o, GC_V);
        a1 = gc_start(b, bj, bb, o + 1, 0); h1 = gc_start(b, bj, bb, o + 1, GC_V);
        a2 = gc_start(b, bj, bb, o + 2, 0); h2 = gc_start(b, bj, bb, o + 2, GC_V);
        a3 = gc_start(b, bj, bb, o + 3, 0); h3 = gc_start(b, bj, bb, o + 3, GC_V);
    }
    /* term t reads input t (n - 1 - t down) at offsets the loop steps: no index computed per term */
    const long first = down ? n - 1 - at : at, x_step = down ? -GC_B : GC_B, m_step = down ? -(long)mi : mi;
    const long mo2 = 2 * (long)mo, mo3 = 3 * (long)mo;
    long xo = first * GC_B, mo_at = (long)o * mo + first * mi;
    for (int t = at; t < end; t++, xo += x_step, mo_at += m_step) {
        const double *mi_row = M + mo_at;
        const gc_vec xl = gc_load(x + xo), xh = gc_load(x + xo + GC_V);
        a0 = GC_ADD(a0, GC_MULS(mi_row[0], xl)); h0 = GC_ADD(h0, GC_MULS(mi_row[0], xh));
        a1 = GC_ADD(a1, GC_MULS(mi_row[mo], xl)); h1 = GC_ADD(h1, GC_MULS(mi_row[mo], xh));
        a2 = GC_ADD(a2, GC_MULS(mi_row[mo2], xl)); h2 = GC_ADD(h2, GC_MULS(mi_row[mo2], xh));
        a3 = GC_ADD(a3, GC_MULS(mi_row[mo3], xl)); h3 = GC_ADD(h3, GC_MULS(mi_row[mo3], xh));
    }
    double *out = y + o * GC_B;
    if (keep < 1) { gc_store(out, a0); gc_store(out + GC_V, h0); }
    if (keep < 2) { gc_store(out + GC_B, a1); gc_store(out + GC_B + GC_V, h1); }
    if (keep < 3) { gc_store(out + 2 * GC_B, a2); gc_store(out + 2 * GC_B + GC_V, h2); }
    gc_store(out + 3 * GC_B, a3); gc_store(out + 3 * GC_B + GC_V, h3);
}

GC_LAYER void gc_blin(double *y, const double *b, int bj, int bb, const double *M, int mo, int mi,
                           const double *x, int m, int n, int down)
{   /* y[o] = ((b[o] + M(o,i0)*x[i0]) + M(o,i1)*x[i1]) + ... in every row of the block, i = 0, 1, ...
       (matvec: M(o,i) = M[o*mo + i*mi]) or i = n-1, n-2, ... (down: vecmat).  Four outputs of both vectors
       of rows at a time (eight sums in flight hide an add's latency), the last m % 4 of them in a pass from
       o = m - 4 that stores only those; the terms GC_CHUNK at a time, the sums kept in y between chunks, so
       that a chunk's x stays in L1 for every output */
    for (int at = 0; at < n; at += GC_CHUNK) {
        const int end = gc_min(at + GC_CHUNK, n);
        int o = 0;
        for (; o + 4 <= m; o += 4) gc_blin_four(y, b, bj, bb, M, mo, mi, x, n, down, o, 0, at, end);
        if (o < m && m >= 4) gc_blin_four(y, b, bj, bb, M, mo, mi, x, n, down, m - 4, o - (m - 4), at, end);
        else if (o < m) gc_blin_tail(y, b, bj, bb, M, mo, mi, x, n, down, o, m - o, at, end);
    }
}

static inline void gc_bouter_keep(double *y, gc_vec s, long fresh)
{   /* the lanes fresh .. GC_V - 1 of s into y[fresh ..] (none if fresh >= GC_V) */
    if (fresh == 0) { gc_store(y, s); return; }
    double sum[GC_V];
    gc_store(sum, s);
    for (long lane = fresh; lane < GC_V; lane++) y[lane] = sum[lane];
}

#define GC_PANEL 256  /* columns of gc_bouter_add whose b one tile holds */

/* a product of gc_bouter_add, plus the lane's bias d (at q) when there is one; the functions
   below are inlined into gc_bouter_add and gc_bouter_add_biased, so that the test is decided
   at compile time (a run-time test in the loops made MNIST's step 9% slower) */
#define GC_BIASED(d, q, p) ((d) ? GC_ADD(gc_load(q), p) : (p))
#if defined(__GNUC__)
#define GC_INLINED static inline __attribute__((always_inline))
#else
#define GC_INLINED static inline
#endif

GC_INLINED void gc_bouter_four(double *yj, const double *aj, const double *tile, long tw, long n, long k,
                                  long fresh, const double *dj)
{   /* gc_bouter_rows' four rows, columns k .. k + 2 * GC_V - 1: eight sums in flight; only the columns from
       k + fresh on are stored */
    double *y0 = yj + k, *y1 = y0 + n, *y2 = y1 + n, *y3 = y2 + n;
    gc_vec s0 = gc_load(y0), t0 = gc_load(y0 + GC_V), s1 = gc_load(y1), t1 = gc_load(y1 + GC_V);
    gc_vec s2 = gc_load(y2), t2 = gc_load(y2 + GC_V), s3 = gc_load(y3), t3 = gc_load(y3 + GC_V);
#pragma GCC unroll 16  /* GC_B rows: unrolled, the loop's own instructions were a fifth of its body's */
    for (int rb = 0; rb < GC_B; rb++) {
        const gc_vec u = gc_load(tile + rb * tw + k), v = gc_load(tile + rb * tw + k + GC_V);
        const double c0 = aj[rb], c1 = aj[GC_B + rb], c2 = aj[2 * GC_B + rb], c3 = aj[3 * GC_B + rb];
        s0 = GC_ADD(s0, GC_BIASED(dj, dj + 0 * n + k, GC_MULV(u, c0))); t0 = GC_ADD(t0, GC_BIASED(dj, dj + 0 * n + k + GC_V, GC_MULV(v, c0)));
        s1 = GC_ADD(s1, GC_BIASED(dj, dj + 1 * n + k, GC_MULV(u, c1))); t1 = GC_ADD(t1, GC_BIASED(dj, dj + 1 * n + k + GC_V, GC_MULV(v, c1)));
        s2 = GC_ADD(s2, GC_BIASED(dj, dj + 2 * n + k, GC_MULV(u, c2))); t2 = GC_ADD(t2, GC_BIASED(dj, dj + 2 * n + k + GC_V, GC_MULV(v, c2)));
        s3 = GC_ADD(s3, GC_BIASED(dj, dj + 3 * n + k, GC_MULV(u, c3))); t3 = GC_ADD(t3, GC_BIASED(dj, dj + 3 * n + k + GC_V, GC_MULV(v, c3)));
    }
    if (fresh == 0) {
        gc_store(y0, s0); gc_store(y0 + GC_V, t0); gc_store(y1, s1); gc_store(y1 + GC_V, t1);
        gc_store(y2, s2); gc_store(y2 + GC_V, t2); gc_store(y3, s3); gc_store(y3 + GC_V, t3);
        return;
    }
    const long later = fresh > GC_V ? fresh - GC_V : 0;
    gc_bouter_keep(y0, s0, fresh); gc_bouter_keep(y0 + GC_V, t0, later);
    gc_bouter_keep(y1, s1, fresh); gc_bouter_keep(y1 + GC_V, t1, later);
    gc_bouter_keep(y2, s2, fresh); gc_bouter_keep(y2 + GC_V, t2, later);
    gc_bouter_keep(y3, s3, fresh); gc_bouter_keep(y3 + GC_V, t3, later);
}

GC_INLINED void gc_bouter_rows(double *y, const double *a, const double *tile, long tw, long n, long j,
                                  long rows, long width, const double *d)
{   /* gc_bouter_add on rows j .. j + rows - 1 (rows <= 4) of y, columns 0 .. width - 1 of the panel y and
       tile (tile[rb * tw + c]: its b, row by row) start at: 2 * GC_V columns at a time (2 * rows sums in
       flight), then the last width % (2 * GC_V) columns in a pass of as many from width - 2 * GC_V that
       stores only those (the others are added to already); or, for fewer rows or columns, one vector at a
       time, the last from width - GC_V */
    const double *aj = a + j * GC_B, *dj = d ? d + j * n : 0;
    double *yj = y + j * n;
    long k = 0;
    if (rows == 4 && width >= 2 * GC_V) {
        for (; k + 2 * GC_V <= width; k += 2 * GC_V) gc_bouter_four(yj, aj, tile, tw, n, k, 0, dj);
        if (k < width) gc_bouter_four(yj, aj, tile, tw, n, width - 2 * GC_V, k - (width - 2 * GC_V), dj);
        return;
    }
    for (; k + 2 * GC_V <= width; k += 2 * GC_V) {
        gc_vec s[4], t[4];
        for (long q = 0; q < rows; q++) { s[q] = gc_load(yj + q * n + k); t[q] = gc_load(yj + q * n + k + GC_V); }
        for (int rb = 0; rb < GC_B; rb++) {
            const gc_vec u = gc_load(tile + rb * tw + k), v = gc_load(tile + rb * tw + k + GC_V);
            for (long q = 0; q < rows; q++) {
                s[q] = GC_ADD(s[q], GC_BIASED(dj, dj + q * n + k, GC_MULV(u, aj[q * GC_B + rb])));
                t[q] = GC_ADD(t[q], GC_BIASED(dj, dj + q * n + k + GC_V, GC_MULV(v, aj[q * GC_B + rb])));
            }
        }
        for (long q = 0; q < rows; q++) { gc_store(yj + q * n + k, s[q]); gc_store(yj + q * n + k + GC_V, t[q]); }
    }
    for (; k < width; k += GC_V) {
        const long e = k + GC_V <= width ? k : width - GC_V, fresh = k - e;
        gc_vec s[4];
        for (long q = 0; q < rows; q++) s[q] = gc_load(yj + q * n + e);
        for (int rb = 0; rb < GC_B; rb++) {
            const gc_vec u = gc_load(tile + rb * tw + e);
            for (long q = 0; q < rows; q++) s[q] = GC_ADD(s[q], GC_BIASED(dj, dj + q * n + e, GC_MULV(u, aj[q * GC_B + rb])));
        }
        for (long q = 0; q < rows; q++) gc_bouter_keep(yj + q * n + e, s[q], fresh);
    }
}

GC_INLINED void gc_bouter_panels(double *y, const double *a, const double *b, int m, int n, const double *d)
{   /* y[j,k] += b[k]*a[j] for each row of the block in turn, row 0 first; with a bias d (not 0: the same
       for every row, laid out as y), y[j,k] += d[j,k] + b[k]*a[j].  A panel of up to GC_PANEL + GC_V
       columns at a time, its b first turned into rows of a tile; y's rows four at a time (gc_bouter_rows),
       in order, each read and written once but for the few columns a row's last pass goes over again. */
    double tile[GC_B * (GC_PANEL + GC_V)];
    if (n < GC_V) {
        for (long j = 0; j < m; j++)
            for (long k = 0; k < n; k++)
                for (int rb = 0; rb < GC_B; rb++) {
                    const double product = b[k * GC_B + rb] * a[j * GC_B + rb];
                    y[j * n + k] = y[j * n + k] + (d ? d[j * n + k] + product : product);
                }
        return;
    }
    for (long k0 = 0; k0 < n;) {
        const long width = n - k0 <= GC_PANEL + GC_V ? n - k0 : GC_PANEL;  /* the last panel: GC_V columns or more */
        for (long c = 0; c < width; c++)
            for (int rb = 0; rb < GC_B; rb++) tile[rb * width + c] = b[(k0 + c) * GC_B + rb];
        long j = 0;
        for (; j + 4 <= m; j += 4) gc_bouter_rows(y + k0, a, tile, width, n, j, 4, width, d ? d + k0 : 0);
        for (; j < m; j++) gc_bouter_rows(y + k0, a, tile, width, n, j, 1, width, d ? d + k0 : 0);
        k0 += width;
    }
}

GC_LAYER void gc_bouter_add(double *y, const double *a, const double *b, int m, int n)
{
    gc_bouter_panels(y, a, b, m, n, 0);
}

GC_LAYER void gc_bouter_add_biased(double *y, const double *a, const double *b, int m, int n, const double *d)
{
    gc_bouter_panels(y, a, b, m, n, d);
}
"""

ONE_ROW = r"""
/* one row: matvec, vecmat and outer over outputs side by side (GC_V outputs a vector), each
   output's sum in its own order (see graphc/codegen/c_layers.py) */
static inline gc_vec gc_terms(const double *b, int b_stride, int o)
{   /* b[o * b_stride], b[(o + 1) * b_stride], ...: the first term of each output's sum */
    if (b_stride == 1) return gc_load(b + o);
    double tile[GC_V];
    for (int q = 0; q < GC_V; q++) tile[q] = b[(o + q) * b_stride];
    return gc_load(tile);
}

GC_LAYER void gc_lin(double *y, const double *b, int b_stride, const double *M, int mi, const double *x,
                          int m, int n, int down)
{   /* y[o] = ((b[o] + M[i0*mi + o]*x[i0]) + M[i1*mi + o]*x[i1]) + ..., i = 0, 1, ... (or n-1, ..., 0 if
       down), twelve, then four sums of GC_V outputs in each step */
    if (m < GC_V) {
        for (int o = 0; o < m; o++) y[o] = b[o * b_stride];
        for (int t = 0; t < n; t++) {
            int i = down ? n - 1 - t : t;
            for (int o = 0; o < m; o++) y[o] = y[o] + M[i * mi + o] * x[i];
        }
        return;
    }
    int o = 0;
    for (; o + 12 * GC_V <= m; o += 12 * GC_V) {  /* twelve vectors: each row of M read once, in order */
        gc_vec a[12];
#pragma GCC unroll 12
        for (int q = 0; q < 12; q++) a[q] = gc_terms(b, b_stride, o + q * GC_V);
        for (int t = 0; t < n; t++) {
            const int i = down ? n - 1 - t : t;
            const double *row = M + i * mi + o;
            const double xi = x[i];
#pragma GCC unroll 12
            for (int q = 0; q < 12; q++) a[q] = GC_ADD(a[q], GC_MULV(gc_load(row + q * GC_V), xi));
        }
#pragma GCC unroll 12
        for (int q = 0; q < 12; q++) gc_store(y + o + q * GC_V, a[q]);
    }
    for (; o < m; o += 4 * GC_V) {
        int at[4];
        for (int q = 0; q < 4; q++) at[q] = gc_min(o + q * GC_V, m - GC_V);
        gc_vec a0 = gc_terms(b, b_stride, at[0]), a1 = gc_terms(b, b_stride, at[1]);
        gc_vec a2 = gc_terms(b, b_stride, at[2]), a3 = gc_terms(b, b_stride, at[3]);
        for (int t = 0; t < n; t++) {
            int i = down ? n - 1 - t : t;
            const double *row = M + i * mi;
            double xi = x[i];
            a0 = GC_ADD(a0, GC_MULV(gc_load(row + at[0]), xi));
            a1 = GC_ADD(a1, GC_MULV(gc_load(row + at[1]), xi));
            a2 = GC_ADD(a2, GC_MULV(gc_load(row + at[2]), xi));
            a3 = GC_ADD(a3, GC_MULV(gc_load(row + at[3]), xi));
        }
        gc_store(y + at[0], a0); gc_store(y + at[1], a1); gc_store(y + at[2], a2); gc_store(y + at[3], a3);
    }
}

GC_LAYER void gc_matvec_t(double *y, const double *b, int b_stride, const double *Wt, const double *x, int m, int n)
{   /* gc_matvec reading W transposed (Wt[k*m + j] = W[j,k]): the same additions, outputs contiguous */
    gc_lin(y, b, b_stride, Wt, m, x, m, n, 0);
}

GC_LAYER void gc_vecmat(double *y, const double *acc, int acc_stride, const double *g, const double *W,
                             int m, int n)
{   /* y[k] = acc[k] + W[m-1,k]*g[m-1] + ... + W[0,k]*g[0] */
    gc_lin(y, acc, acc_stride, W, n, g, n, m, 1);
}

static inline double gc_sgd(double p, double g, double lr, long step)
{   /* train's step of p with gradient g: p - lr * g (step 1: lr) or p + (-(lr * g)) (step 2: SGD) */
    return step == 1 ? p - lr * g : p + (-(lr * g));
}

static inline gc_vec gc_vsgd(gc_vec p, gc_vec g, double lr, long step)
{
    return step == 1 ? GC_SUB(p, GC_MULS(lr, g)) : GC_ADD(p, GC_NEG(GC_MULS(lr, g)));
}

static inline double gc_into(const double *y, double x, int summed, double lr, long step)
{   /* gc_outer_into at y: y + x (summed), 0.0 + x, or the step of y with gradient 0.0 + x (step) */
    if (summed) return *y + x;
    return step ? gc_sgd(*y, 0.0 + x, lr, step) : 0.0 + x;
}

static inline gc_vec gc_vinto(const double *y, gc_vec x, int summed, double lr, long step)
{
    if (summed) return GC_ADD(gc_load(y), x);
    gc_vec g = GC_ADD(gc_splat(0.0), x);
    return step ? gc_vsgd(gc_load(y), g, lr, step) : g;
}

GC_LAYER void gc_outer_into(double *y, const double *x, const double *a, const double *b, int m, int n,
                                 int summed, double lr, long step)
{   /* y[j,k] = gc_into(x[j,k], b[k]*a[j], ...) (x: y, or the params of a step), the vector at k = n - GC_V of
       each row first */
    if (n < GC_V) {
        for (int j = 0; j < m; j++)
            for (int k = 0; k < n; k++) y[j * n + k] = gc_into(x + j * n + k, b[k] * a[j], summed, lr, step);
        return;
    }
    const int e = n - GC_V;
    for (int j = 0; j < m; j++) {
        double *row = y + j * n;
        const double *u = x + j * n, s = a[j];
        gc_vec v = gc_vinto(u + e, GC_MULV(gc_load(b + e), s), summed, lr, step);
        for (int k = 0; k < e; k += GC_V)
            gc_store(row + k, gc_vinto(u + k, GC_MULV(gc_load(b + k), s), summed, lr, step));
        gc_store(row + e, v);
    }
}

GC_LAYER void gc_outer_add(double *y, const double *a, const double *b, int m, int n)
{   /* y += outer(a, b): a gradient summed over rows without forming the products first */
    gc_outer_into(y, y, a, b, m, n, 1, 0.0, 0);
}

GC_LAYER void gc_outer_first(double *y, const double *a, const double *b, int m, int n)
{   /* y = 0.0 + outer(a, b): the first row of a sum, without 0.0 in y first */
    gc_outer_into(y, y, a, b, m, n, 0, 0.0, 0);
}

GC_LAYER void gc_outer_step(double *y, const double *p, const double *a, const double *b, int m, int n,
                                 double lr, long step)
{   /* y = gc_sgd(p, 0.0 + outer(a, b), lr, step): one row's gradient and train's step with that gradient */
    gc_outer_into(y, p, a, b, m, n, 0, lr, step);
}

"""
