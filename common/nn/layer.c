/* nn/layer.c - one transformer layer: forward, and backward from the saved activations.
 *
 *   attention: x_mid = x_in + [post_norm](proj(attn(rope(qk_norm(split(qkv(norm1(x_in))))))))
 *   MLP:       x_out = x_mid + [post_norm](fc2(act(fc1(norm2(x_mid)))))
 *
 * Linear layers keep weights [out, in] as Megatron does: y = x W^T (+ b), so the input
 * gradient is dy W and the weight gradient dy^T x. Each goes through nn/linear.h, which
 * does the tensor-parallel communication: linear_qkv and linear_fc1 column-parallel,
 * linear_proj and linear_fc2 row-parallel; attention and the activation run on this
 * rank's heads and FFN columns only (m->loc). The forward is also generation's
 * (mb_layer_forward_pass with attention over a key/value cache, nn/infer.c).
 */
#include "nn/internal.h"

#include "nn/rope.h"

static float *weight(const struct mb_model *m, enum mb_param_id id, int64_t l)
{
    int64_t off = mb_param_offset(&m->params, id, l);
    return off < 0 ? NULL : m->w + off;
}

/* NULL when the model has no such parameter, it is frozen or there are no gradients. */
static float *grad(const struct mb_model *m, enum mb_param_id id, int64_t l)
{
    const struct mb_param *p = mb_param_get(&m->params, id);
    float *g = mb_model_grad_of(m, p);
    return g ? g + (mb_param_offset(&m->params, id, l) - p->offset) : NULL;
}

static int64_t rows_of(const struct mb_model *m)
{
    return m->acts->batch * m->acts->seq;
}

/* Rows of the residual stream on this rank (all of them without sequence parallelism). */
static int64_t res_rows(const struct mb_model *m)
{
    return m->acts->res_rows;
}

struct mb_linear mb_model_linear(const struct mb_model *m, enum mb_param_id w_id,
                                 enum mb_param_id b_id, int64_t l, enum mb_linear_mode mode,
                                 int64_t in, int64_t out)
{
    struct mb_linear lin = {
        .mode = mode,
        .sequence_parallel = m->sequence_parallel,
        .in = in,
        .out = out,
        .w = weight(m, w_id, l),
        .b = weight(m, b_id, l),
        .gw = m->g ? grad(m, w_id, l) : NULL,
        .gb = m->g ? grad(m, b_id, l) : NULL,
        .ops = m->ops,
        .ex = m->ex,
        .tp = m->tp,
        .gathered = m->acts ? m->acts->gathered : NULL,
    };
    lin.wb = lin.w ? mb_model_bf16_weight(m, w_id, l) : NULL;
    if (lin.wb) {
        lin.xb = m->acts ? m->acts->xb : NULL; /* no acts: not for a GEMM (DoRA's norms) */
        lin.dyb = m->acts ? m->acts->dyb : NULL;
        lin.gw_fresh = lin.gw ? mb_model_gw_fresh(m, w_id, l) : NULL;
    }
    return lin;
}

/* With mb_model_saves_bf16: LIN's bf16 input goes to (or, in the backward, is read
 * from) SAVED, kept from the forward to the backward. */
static void keep_input(struct mb_linear *lin, uint16_t *saved)
{
    if (saved && lin->wb) {
        lin->xb = saved;
        lin->xb_kept = true;
    }
}

/* In bf16: the COUNT floats at X rounded to bf16 into their kept copy SAVED and back, so
 * the forward computes with the values the backward will see. */
static void round_to_saved(const struct mb_model *m, uint16_t *saved, float *x, int64_t count)
{
    if (!saved)
        return;
    m->ops->convert(m->ex, saved, MB_DTYPE_BF16, x, MB_DTYPE_F32, count);
    m->ops->convert(m->ex, x, MB_DTYPE_F32, saved, MB_DTYPE_BF16, count);
}

/* The backward's fp32 X again from its kept bf16 copy SAVED (none: X was kept). */
static void widen_saved(const struct mb_model *m, float *x, const uint16_t *saved, int64_t count)
{
    if (saved)
        m->ops->convert(m->ex, x, MB_DTYPE_F32, saved, MB_DTYPE_BF16, count);
}

/* Attach layer L's adapter of module K, if the model has one, to LIN (peft/peft.h). */
static void attach(const struct mb_model *m, struct mb_linear *lin, enum mb_peft_module k,
                   int64_t l)
{
    enum mb_param_id a = mb_param_adapter_id(k, MB_ADAPTER_A);
    enum mb_param_id b = mb_param_adapter_id(k, MB_ADAPTER_B);
    enum mb_param_id mag = mb_param_adapter_id(k, MB_ADAPTER_M);
    const struct mb_param *pm = mb_param_get(&m->params, mag);
    if (!mb_param_get(&m->params, a))
        return;
    struct mb_adapter *ad = &lin->adapter;
    ad->rank = m->peft.dim;
    ad->dora = pm != NULL;
    ad->scale = mb_peft_scale(&m->peft);
    ad->a = weight(m, a, l);
    ad->b = weight(m, b, l);
    ad->ga = grad(m, a, l);
    ad->gb = grad(m, b, l);
    if (pm) {
        ad->mag = weight(m, mag, l);
        ad->gmag = grad(m, mag, l);
        ad->norm = m->peft_norm[k] + l * (pm->numel / pm->shape[0]);
        ad->norm_fixed = m->peft_norms_fixed;
    }
    ad->scratch = m->peft_scratch;
    ad->dropout = m->peft_dropout_on ? &m->peft_dropout : NULL;
    ad->site = mb_model_global_layer(m, l) * MB_PEFT_MODULES + k;
    /* a row-parallel layer holds an equal block of the input columns */
    ad->col0 = lin->mode == MB_LINEAR_ROW ? m->tp->rank * lin->in : 0;
}

/* The model's four projections, with this rank's shapes (parallel.md 2.2-2.4), and
 * their adapters. */
static struct mb_linear qkv_linear(const struct mb_model *m, int64_t l)
{
    struct mb_linear lin = mb_model_linear(m, MB_P_QKV_W, MB_P_QKV_B, l, MB_LINEAR_COLUMN,
                                           m->cfg.hidden_size, m->loc->qkv_rows);
    attach(m, &lin, MB_PEFT_QKV, l);
    return lin;
}

static struct mb_linear proj_linear(const struct mb_model *m, int64_t l)
{
    struct mb_linear lin = mb_model_linear(m, MB_P_PROJ_W, MB_P_PROJ_B, l, MB_LINEAR_ROW,
                                           m->loc->heads * m->cfg.kv_channels,
                                           m->cfg.hidden_size);
    attach(m, &lin, MB_PEFT_PROJ, l);
    return lin;
}

static struct mb_linear fc1_linear(const struct mb_model *m, int64_t l)
{
    struct mb_linear lin = mb_model_linear(m, MB_P_FC1_W, MB_P_FC1_B, l, MB_LINEAR_COLUMN,
                                           m->cfg.hidden_size, m->loc->fc1_rows);
    attach(m, &lin, MB_PEFT_FC1, l);
    return lin;
}

static struct mb_linear fc2_linear(const struct mb_model *m, int64_t l)
{
    struct mb_linear lin = mb_model_linear(m, MB_P_FC2_W, MB_P_FC2_B, l, MB_LINEAR_ROW,
                                           m->loc->ffn, m->cfg.hidden_size);
    attach(m, &lin, MB_PEFT_FC2, l);
    return lin;
}

/* For every DoRA layer: the row norms of W (+ s B A WITH_ADAPTER) into its magnitude
 * (TO_MAGNITUDE) or its norm buffer. */
static void all_row_norms(struct mb_model *m, bool with_adapter, bool to_magnitude)
{
    struct mb_linear (*const linear_of[MB_PEFT_MODULES])(const struct mb_model *, int64_t) = {
        qkv_linear, proj_linear, fc1_linear, fc2_linear
    };
    for (int k = 0; k < MB_PEFT_MODULES && m->peft.kind == MB_PEFT_DORA; k++) {
        enum mb_param_id id = mb_param_adapter_id(k, MB_ADAPTER_M);
        if (!mb_param_get(&m->params, id))
            continue;
        for (int64_t l = 0; l < m->stage.layers; l++) {
            struct mb_linear lin = linear_of[k](m, l);
            struct mb_adapter_base base = { m->ops, m->ex, m->tp, lin.mode == MB_LINEAR_ROW, lin.in,
                                            lin.out, lin.w };
            mb_adapter_row_norms(&lin.adapter, &base, with_adapter,
                                 to_magnitude ? weight(m, id, l) : lin.adapter.norm);
        }
    }
}

void mb_model_init_magnitudes(struct mb_model *m)
{
    all_row_norms(m, false, true);
}

void mb_model_fix_norms(struct mb_model *m)
{
    m->peft_norms_fixed = false;
    all_row_norms(m, true, false);
    m->peft_norms_fixed = m->peft.kind == MB_PEFT_DORA;
}

void mb_norm_forward(const struct mb_model *m, float *y, float *mean, float *rstd,
                     const float *x, const float *w, const float *b, int64_t rows)
{
    const struct mb_model_config *c = &m->cfg;
    if (c->normalization == MB_NORM_LAYER)
        m->ops->layernorm_fwd(m->ex, y, mean, rstd, x, w, b, rows, c->hidden_size,
                              (float)c->layernorm_epsilon);
    else
        m->ops->rmsnorm_fwd(m->ex, y, rstd, x, w, rows, c->hidden_size, (float)c->layernorm_epsilon,
                            c->layernorm_zero_centered_gamma);
}

void mb_norm_backward(const struct mb_model *m, float *dx, float *dw, float *db,
                      const float *dy, const float *x, const float *w, const float *mean,
                      const float *rstd, int64_t rows)
{
    const struct mb_model_config *c = &m->cfg;
    if (c->normalization == MB_NORM_LAYER)
        m->ops->layernorm_bwd(m->ex, dx, dw, db, dy, x, w, mean, rstd, rows, c->hidden_size);
    else
        m->ops->rmsnorm_bwd(m->ex, dx, dw, dy, x, w, rstd, rows, c->hidden_size,
                            c->layernorm_zero_centered_gamma);
}

struct mb_attn_shape mb_model_attn_shape(const struct mb_model_config *c, int64_t layer,
                                         int64_t batch, int64_t seq)
{
    struct mb_attn_shape s = {
        .batch = batch,
        .seq = seq,
        .heads = c->num_attention_heads,
        .kv_heads = c->num_query_groups,
        .head_dim = c->kv_channels,
        .scale = mb_model_softmax_scale(c),
        .softcap = (float)c->attn_logit_softcapping,
        .window = mb_model_layer_slides(c, layer) ? c->sliding_window : 0,
    };
    return s;
}

/* This rank's heads and groups. */
static struct mb_attn_shape attn_shape(const struct mb_model *m, int64_t l)
{
    struct mb_attn_shape s =
        mb_model_attn_shape(&m->cfg, mb_model_global_layer(m, l), m->acts->batch, m->acts->seq);
    s.heads = m->loc->heads;
    s.kv_heads = m->loc->groups;
    s.doc_start = m->acts->doc_start;
    return s;
}

static const float *rope_table(const struct mb_model *m, int64_t l)
{
    return mb_model_layer_slides(&m->cfg, mb_model_global_layer(m, l)) ? m->rope_local
                                                                        : m->rope_global;
}

/* The shape of layer L's attention for the positions of pass P, with this rank's heads. */
static struct mb_attn_shape pass_shape(const struct mb_model *m, int64_t l,
                                       const struct mb_layer_pass *p)
{
    struct mb_attn_shape s = mb_model_attn_shape(&m->cfg, mb_model_global_layer(m, l), p->batch,
                                                 p->seq);
    s.heads = m->loc->heads;
    s.kv_heads = m->loc->groups;
    s.doc_start = p->doc_start;
    return s;
}

/* The embeddings of q and k: QK-norm (per head, over d) then RoPE, in place. */
static void qk_forward(const struct mb_model *m, int64_t l, const struct mb_layer_pass *p)
{
    const struct mb_model_config *c = &m->cfg;
    struct mb_layer_acts *la = p->la;
    const struct mb_attn_shape s = pass_shape(m, l, p);
    float eps = (float)c->layernorm_epsilon;
    bool zc = c->layernorm_zero_centered_gamma;
    int64_t bt = s.batch * s.seq;
    if (c->qk_layernorm) {
        m->ops->rmsnorm_fwd(m->ex, la->q, la->qn_rstd, la->q_pre, weight(m, MB_P_QNORM_W, l),
                            bt * s.heads, s.head_dim, eps, zc);
        m->ops->rmsnorm_fwd(m->ex, la->k, la->kn_rstd, la->k_pre, weight(m, MB_P_KNORM_W, l),
                            bt * s.kv_heads, s.head_dim, eps, zc);
    }
    if (c->position_embedding_type == MB_POS_ROPE) {
        int64_t rot = mb_rope_dims(c);
        m->ops->rope_fwd(m->ex, la->q, rope_table(m, l), p->pos, s.batch, s.heads, s.seq,
                         s.head_dim, rot);
        m->ops->rope_fwd(m->ex, la->k, rope_table(m, l), p->pos, s.batch, s.kv_heads, s.seq,
                         s.head_dim, rot);
    }
}

static void attention_forward(const struct mb_model *m, int64_t l, const struct mb_layer_pass *p,
                              float *out)
{
    const struct mb_model_config *c = &m->cfg;
    struct mb_layer_acts *la = p->la;
    const struct mb_attn_shape s = pass_shape(m, l, p);
    int64_t n = p->batch * p->seq, r = p->res_rows, h = c->hidden_size;
    struct mb_linear qkv = qkv_linear(m, l), proj = proj_linear(m, l);

    keep_input(&qkv, la->ln1_b);
    mb_norm_forward(m, la->ln1, la->ln1_mean, la->ln1_rstd, la->x_in, weight(m, MB_P_LN1_W, l),
                    weight(m, MB_P_LN1_B, l), r);
    mb_linear_forward(&qkv, p->qkv, la->ln1, n);
    m->ops->qkv_split(m->ex, c->qk_layernorm ? la->q_pre : la->q,
                      c->qk_layernorm ? la->k_pre : la->k, la->v, p->qkv, &s);
    qk_forward(m, l, p);
    round_to_saved(m, la->q_b, la->q, n * s.heads * s.head_dim);
    round_to_saved(m, la->k_b, la->k, n * s.kv_heads * s.head_dim);
    round_to_saved(m, la->v_b, la->v, n * s.kv_heads * s.head_dim);
    if (p->attend)
        p->attend(p->ctx, l, la, &s);
    else
        m->ops->attention_fwd(m->ex, la->attn, la->lse, la->q, la->k, la->v, &s);
    if (c->sandwich_norm) {
        mb_linear_forward(&proj, la->proj, la->attn, n);
        m->ops->rmsnorm_fwd(m->ex, out, la->pa_rstd, la->proj, weight(m, MB_P_POST_ATTN_NORM_W, l),
                            r, h, (float)c->layernorm_epsilon, c->layernorm_zero_centered_gamma);
    } else {
        mb_linear_forward(&proj, out, la->attn, n);
    }
}

static void activation_forward(const struct mb_model *m, float *y, const float *x, int64_t n)
{
    int64_t inner = m->loc->ffn;
    switch (m->cfg.activation) {
    case MB_ACT_SWIGLU: m->ops->swiglu_fwd(m->ex, y, x, n, inner); break;
    case MB_ACT_GEGLU: m->ops->geglu_fwd(m->ex, y, x, n, inner); break;
    case MB_ACT_GELU: m->ops->gelu_fwd(m->ex, y, x, n * inner); break;
    }
}

static void activation_backward(const struct mb_model *m, float *dx, const float *dy,
                                const float *x, int64_t n)
{
    int64_t inner = m->loc->ffn;
    switch (m->cfg.activation) {
    case MB_ACT_SWIGLU: m->ops->swiglu_bwd(m->ex, dx, dy, x, n, inner); break;
    case MB_ACT_GEGLU: m->ops->geglu_bwd(m->ex, dx, dy, x, n, inner); break;
    case MB_ACT_GELU: m->ops->gelu_bwd(m->ex, dx, dy, x, n * inner); break;
    }
}

/* Whether the MLP runs between fc1 and fc2 on bf16 alone: fc1 writes its kept bf16 output,
 * the activation reads that and writes fc2's bf16 input (and their gradients likewise),
 * with no fp32 fc1 or act in between. The same bits as the fp32 tensors and their
 * converts; it needs the kept bf16 copies (so no adapter or sequence parallelism) and an
 * fc1 without bias (the bias is added in fp32, and its gradient sums the fp32 dy). */
static bool mlp_in_bf16(const struct mb_model *m, const struct mb_linear *fc1)
{
    return mb_model_saves_bf16(m) && !fc1->b;
}

static void mlp_forward(const struct mb_model *m, int64_t l, const struct mb_layer_pass *p,
                        float *out)
{
    const struct mb_model_config *c = &m->cfg;
    struct mb_layer_acts *la = p->la;
    int64_t n = p->batch * p->seq, r = p->res_rows, h = c->hidden_size;
    struct mb_linear fc1 = fc1_linear(m, l), fc2 = fc2_linear(m, l);

    keep_input(&fc1, la->ln2_b);
    mb_norm_forward(m, la->ln2, la->ln2_mean, la->ln2_rstd, la->x_mid, weight(m, MB_P_LN2_W, l),
                    weight(m, MB_P_LN2_B, l), r);
    if (mlp_in_bf16(m, &fc1)) {
        mb_linear_forward_bf16(&fc1, la->fc1_b, la->ln2, n);
        m->ops->act_fwd_bf16(m->ex, c->activation, fc2.xb, la->fc1_b, n, m->loc->ffn);
        fc2.xb_given = true;
    } else {
        mb_linear_forward(&fc1, la->fc1, la->ln2, n);
        round_to_saved(m, la->fc1_b, la->fc1, n * m->loc->fc1_rows);
        activation_forward(m, la->act, la->fc1, n);
    }
    if (c->sandwich_norm) {
        mb_linear_forward(&fc2, la->fc2, la->act, n);
        m->ops->rmsnorm_fwd(m->ex, out, la->pm_rstd, la->fc2, weight(m, MB_P_POST_MLP_NORM_W, l), r,
                            h, (float)c->layernorm_epsilon, c->layernorm_zero_centered_gamma);
    } else {
        mb_linear_forward(&fc2, out, la->act, n);
    }
}

void mb_layer_forward_pass(const struct mb_model *m, int64_t l, const struct mb_layer_pass *p,
                           float *out)
{
    struct mb_layer_acts *la = p->la;
    int64_t nh = p->res_rows * m->cfg.hidden_size;

    attention_forward(m, l, p, p->tmp);
    m->ops->copy(m->ex, la->x_mid, la->x_in, nh);
    m->ops->add(m->ex, la->x_mid, p->tmp, nh);
    mlp_forward(m, l, p, p->tmp);
    m->ops->copy(m->ex, out, la->x_mid, nh);
    m->ops->add(m->ex, out, p->tmp, nh);
}

void mb_layer_forward(struct mb_model *m, int64_t l, const int32_t *pos, float *out)
{
    struct mb_acts *a = m->acts;
    struct mb_layer_pass p = {
        .la = &a->layer[l],
        .qkv = a->qkv,
        .tmp = a->tmp,
        .batch = a->batch,
        .seq = a->seq,
        .res_rows = a->res_rows,
        .pos = pos,
        .doc_start = a->doc_start,
    };
    mb_layer_forward_pass(m, l, &p, out);
}

/* d(branch output) from d(residual): through the sandwich norm when there is one. */
static const float *through_post_norm(struct mb_model *m, int64_t l, enum mb_param_id id,
                                      const float *x, const float *rstd)
{
    struct mb_acts *a = m->acts;
    if (!m->cfg.sandwich_norm)
        return a->dres;
    int64_t n = res_rows(m), h = m->cfg.hidden_size;
    m->ops->zero(m->ex, a->dtmp, n * h);
    m->ops->rmsnorm_bwd(m->ex, a->dtmp, grad(m, id, l), a->dres, x, weight(m, id, l), rstd, n, h,
                        m->cfg.layernorm_zero_centered_gamma);
    return a->dtmp;
}

/* dhf from DY through fc2, the activation and fc1, where the forward kept its fp32 path. */
static void mlp_backward_f32(struct mb_model *m, struct mb_linear *fc1, struct mb_linear *fc2,
                             struct mb_layer_acts *la, const float *dy)
{
    struct mb_acts *a = m->acts;
    int64_t n = rows_of(m);
    if (la->fc1_b) { /* act from the kept fc1, as the forward made it */
        widen_saved(m, la->fc1, la->fc1_b, n * m->loc->fc1_rows);
        activation_forward(m, la->act, la->fc1, n);
    }
    mb_linear_backward(fc2, a->dact, dy, la->act, n);
    activation_backward(m, a->dwide, a->dact, la->fc1, n);
    mb_linear_backward(fc1, a->dhf, a->dwide, la->ln2, n);
}

/* The same where the forward ran in bf16 (mlp_in_bf16): fc2's bf16 input again from the
 * kept fc1, the activation's gradient straight into fc1's bf16 dy. */
static void mlp_backward_bf16(struct mb_model *m, struct mb_linear *fc1, struct mb_linear *fc2,
                              struct mb_layer_acts *la, const float *dy)
{
    struct mb_acts *a = m->acts;
    int64_t n = rows_of(m), ffn = m->loc->ffn;
    m->ops->act_fwd_bf16(m->ex, m->cfg.activation, fc2->xb, la->fc1_b, n, ffn);
    fc2->xb_kept = true;
    mb_linear_backward(fc2, a->dact, dy, NULL, n);
    m->ops->act_bwd_bf16(m->ex, m->cfg.activation, fc1->dyb, a->dact, la->fc1_b, n, ffn);
    fc1->dyb_given = true;
    mb_linear_backward(fc1, a->dhf, NULL, la->ln2, n);
}

static void mlp_backward(struct mb_model *m, int64_t l)
{
    struct mb_acts *a = m->acts;
    struct mb_layer_acts *la = &a->layer[l];
    struct mb_linear fc1 = fc1_linear(m, l), fc2 = fc2_linear(m, l);
    keep_input(&fc1, la->ln2_b);

    const float *dy = through_post_norm(m, l, MB_P_POST_MLP_NORM_W, la->fc2, la->pm_rstd);
    if (mlp_in_bf16(m, &fc1))
        mlp_backward_bf16(m, &fc1, &fc2, la, dy);
    else
        mlp_backward_f32(m, &fc1, &fc2, la, dy);
    mb_norm_backward(m, a->dres, grad(m, MB_P_LN2_W, l), grad(m, MB_P_LN2_B, l), a->dhf,
                     la->x_mid, weight(m, MB_P_LN2_W, l), la->ln2_mean, la->ln2_rstd, res_rows(m));
}

/* Gradients of q and k back through RoPE and QK-norm; returns where dq, dk now are. */
static void qk_backward(struct mb_model *m, int64_t l, const int32_t *pos, float **dq,
                        float **dk)
{
    const struct mb_model_config *c = &m->cfg;
    struct mb_acts *a = m->acts;
    struct mb_layer_acts *la = &a->layer[l];
    const struct mb_attn_shape s = attn_shape(m, l);
    int64_t bt = s.batch * s.seq;
    *dq = a->dq;
    *dk = a->dk;
    if (c->position_embedding_type == MB_POS_ROPE) {
        int64_t rot = mb_rope_dims(c);
        m->ops->rope_bwd(m->ex, a->dq, rope_table(m, l), pos, s.batch, s.heads, s.seq, s.head_dim,
                         rot);
        m->ops->rope_bwd(m->ex, a->dk, rope_table(m, l), pos, s.batch, s.kv_heads, s.seq,
                         s.head_dim, rot);
    }
    if (!c->qk_layernorm)
        return;
    bool zc = c->layernorm_zero_centered_gamma;
    m->ops->zero(m->ex, a->dq_pre, bt * s.heads * s.head_dim);
    m->ops->zero(m->ex, a->dk_pre, bt * s.kv_heads * s.head_dim);
    m->ops->rmsnorm_bwd(m->ex, a->dq_pre, grad(m, MB_P_QNORM_W, l), a->dq, la->q_pre,
                        weight(m, MB_P_QNORM_W, l), la->qn_rstd, bt * s.heads, s.head_dim, zc);
    m->ops->rmsnorm_bwd(m->ex, a->dk_pre, grad(m, MB_P_KNORM_W, l), a->dk, la->k_pre,
                        weight(m, MB_P_KNORM_W, l), la->kn_rstd, bt * s.kv_heads, s.head_dim, zc);
    *dq = a->dq_pre;
    *dk = a->dk_pre;
}

static void attention_backward(struct mb_model *m, int64_t l, const int32_t *pos)
{
    struct mb_acts *a = m->acts;
    struct mb_layer_acts *la = &a->layer[l];
    const struct mb_attn_shape s = attn_shape(m, l);
    int64_t n = rows_of(m), r = res_rows(m);
    struct mb_linear qkv = qkv_linear(m, l), proj = proj_linear(m, l);
    keep_input(&qkv, la->ln1_b);

    const float *dy = through_post_norm(m, l, MB_P_POST_ATTN_NORM_W, la->proj, la->pa_rstd);
    float *dattn = a->dwide;
    mb_linear_backward(&proj, dattn, dy, la->attn, n);
    widen_saved(m, la->q, la->q_b, n * s.heads * s.head_dim);
    widen_saved(m, la->k, la->k_b, n * s.kv_heads * s.head_dim);
    widen_saved(m, la->v, la->v_b, n * s.kv_heads * s.head_dim);
    m->ops->attention_bwd(m->ex, a->dq, a->dk, a->dv, dattn, la->q, la->k, la->v, la->attn, la->lse,
                          &s);
    float *dq, *dk;
    qk_backward(m, l, pos, &dq, &dk);
    m->ops->qkv_merge(m->ex, a->dwide, dq, dk, a->dv, &s);
    mb_linear_backward(&qkv, a->dhf, a->dwide, la->ln1, n);
    mb_norm_backward(m, a->dres, grad(m, MB_P_LN1_W, l), grad(m, MB_P_LN1_B, l), a->dhf,
                     la->x_in, weight(m, MB_P_LN1_W, l), la->ln1_mean, la->ln1_rstd, r);
}

void mb_layer_backward(struct mb_model *m, int64_t l, const int32_t *pos)
{
    mlp_backward(m, l);
    attention_backward(m, l, pos);
}
