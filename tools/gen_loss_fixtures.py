#!/usr/bin/env python3
"""Reference values and gradients for distill's loss tests, computed in float64 with PyTorch.

    pip install -r tools/requirements.txt
    python3 tools/gen_loss_fixtures.py      # writes crates/distill/fixtures/losses.json

Each loss below is the reference implementation it cites (the RepDistiller / mdistiller code,
reproduced line for line where the package is not installable from PyPI). Inputs are seeded.
"""
import json
import math
import os

import torch
import torch.nn.functional as F

torch.manual_seed(20231127)
DT = torch.float64
OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "distill", "fixtures", "losses.json")


def arr(t):
    return {"shape": list(t.shape), "data": [float(v) for v in t.detach().reshape(-1).tolist()]}


def case(name, fn, inputs, grad_wrt, params=None, extra=None):
    leaves = {k: v.clone().to(DT).requires_grad_(k in grad_wrt) for k, v in inputs.items()}
    loss = fn(**leaves, **(extra or {}), **(params or {}))
    loss.backward()
    return {
        "name": name,
        "params": params or {},
        "inputs": {k: arr(v) for k, v in leaves.items()},
        "value": float(loss.detach()),
        "grads": {k: arr(leaves[k].grad) for k in grad_wrt},
    }


# RepDistiller distiller_zoo/KD.py (DistillKL)
def kd(student, teacher, temperature):
    p_s = F.log_softmax(student / temperature, dim=1)
    p_t = F.softmax(teacher / temperature, dim=1)
    return F.kl_div(p_s, p_t, reduction="sum") * temperature**2 / student.shape[0]


# RepDistiller distiller_zoo/FitNet.py (HintLoss) applied after the connector
def fitnet(student, teacher):
    return F.mse_loss(student, teacher)


# mdistiller mdistiller/distillers/DKD.py (dkd_loss), without the warm-up factor
def dkd(student, teacher, target, alpha, beta, temperature):
    target = target.long()
    gt_mask = torch.zeros_like(student).scatter_(1, target.unsqueeze(1), 1).bool()
    other_mask = torch.ones_like(student).scatter_(1, target.unsqueeze(1), 0).bool()

    def cat_mask(t, mask1, mask2):
        t1 = (t * mask1).sum(dim=1, keepdims=True)
        t2 = (t * mask2).sum(1, keepdims=True)
        return torch.cat([t1, t2], dim=1)

    pred_student = cat_mask(F.softmax(student / temperature, dim=1), gt_mask, other_mask)
    pred_teacher = cat_mask(F.softmax(teacher / temperature, dim=1), gt_mask, other_mask)
    tckd = F.kl_div(torch.log(pred_student), pred_teacher, reduction="sum") * temperature**2 / target.shape[0]
    pred_teacher_part2 = F.softmax(teacher / temperature - 1000.0 * gt_mask, dim=1)
    log_pred_student_part2 = F.log_softmax(student / temperature - 1000.0 * gt_mask, dim=1)
    nckd = F.kl_div(log_pred_student_part2, pred_teacher_part2, reduction="sum") * temperature**2 / target.shape[0]
    return alpha * tckd + beta * nckd


# DIST official (hunto/DIST_KD, losses/dist_kd.py), as torchdistill's DISTLoss
def dist(student, teacher, beta, gamma, tau):
    def pearson(a, b, eps=1e-8):
        a = a - a.mean(1).unsqueeze(1)
        b = b - b.mean(1).unsqueeze(1)
        return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)

    def inter(y_s, y_t):
        return 1 - pearson(y_s, y_t).mean()

    y_s = (student / tau).softmax(dim=1)
    y_t = (teacher / tau).softmax(dim=1)
    return beta * tau**2 * inter(y_s, y_t) + gamma * tau**2 * inter(y_s.transpose(0, 1), y_t.transpose(0, 1))


# Logit standardisation (Sun et al., CVPR 2024; sunshangquan/logit-standardization-KD, mdistiller/distillers/KD.py)
def kd_ls(student, teacher, temperature):
    def normalize(logit):
        return (logit - logit.mean(dim=-1, keepdims=True)) / (1e-7 + logit.std(dim=-1, keepdims=True))

    log_pred_student = F.log_softmax(normalize(student) / temperature, dim=1)
    pred_teacher = F.softmax(normalize(teacher) / temperature, dim=1)
    return F.kl_div(log_pred_student, pred_teacher, reduction="none").sum(1).mean() * temperature**2


def pool_pair(f_s, f_t):
    s_H, t_H = f_s.shape[2], f_t.shape[2]
    if s_H > t_H:
        f_s = F.adaptive_avg_pool2d(f_s, (t_H, t_H))
    elif s_H < t_H:
        f_t = F.adaptive_avg_pool2d(f_t, (s_H, s_H))
    return f_s, f_t


# RepDistiller distiller_zoo/AT.py (Attention.at_loss), p = 2, one level
def at(student, teacher):
    f_s, f_t = pool_pair(student, teacher)
    a = lambda f: F.normalize(f.pow(2).mean(1).view(f.size(0), -1))
    return (a(f_s) - a(f_t)).pow(2).mean()


# RepDistiller distiller_zoo/NST.py (NSTLoss.nst_loss), one level
def nst(student, teacher):
    f_s, f_t = pool_pair(student, teacher)
    f_s = F.normalize(f_s.view(f_s.shape[0], f_s.shape[1], -1), dim=2)
    f_t = F.normalize(f_t.view(f_t.shape[0], f_t.shape[1], -1), dim=2)
    k = lambda a, b: (a.unsqueeze(1) * b.unsqueeze(2)).sum(-1).pow(2)
    return k(f_t, f_t).mean().detach() + k(f_s, f_s).mean() - 2 * k(f_s, f_t).mean()


# RepDistiller distiller_zoo/SP.py (Similarity.similarity_loss), one level
def sp(student, teacher):
    bsz = student.shape[0]
    g_s = F.normalize(student.view(bsz, -1) @ student.view(bsz, -1).t())
    g_t = F.normalize(teacher.view(bsz, -1) @ teacher.view(bsz, -1).t())
    d = g_t - g_s
    return (d * d).view(-1, 1).sum(0)[0] / (bsz * bsz)


# RepDistiller distiller_zoo/PKT.py (PKT.cosine_similarity_loss)
def pkt(student, teacher, eps=1e-7):
    s = student / (torch.sqrt(torch.sum(student**2, dim=1, keepdim=True)) + eps)
    t = teacher / (torch.sqrt(torch.sum(teacher**2, dim=1, keepdim=True)) + eps)
    ms = (s @ s.t() + 1.0) / 2.0
    ts = (t @ t.t() + 1.0) / 2.0
    ms = ms / ms.sum(dim=1, keepdim=True)
    ts = ts / ts.sum(dim=1, keepdim=True)
    return torch.mean(ts * torch.log((ts + eps) / (ms + eps)))


def pdist(e, eps=1e-12):
    e_square = e.pow(2).sum(dim=1)
    res = (e_square.unsqueeze(1) + e_square.unsqueeze(0) - 2 * e @ e.t()).clamp(min=eps).sqrt().clone()
    res[range(len(e)), range(len(e))] = 0
    return res


# RepDistiller distiller_zoo/RKD.py (RKDLoss), distance and angle terms with their weights
def rkd_distance(student, teacher, w):
    s, t = student.view(student.shape[0], -1), teacher.view(teacher.shape[0], -1)
    with torch.no_grad():
        t_d = pdist(t)
        t_d = t_d / t_d[t_d > 0].mean()
    d = pdist(s)
    d = d / d[d > 0].mean()
    return w * F.smooth_l1_loss(d, t_d)


def rkd_angle(student, teacher, w):
    s, t = student.view(student.shape[0], -1), teacher.view(teacher.shape[0], -1)
    with torch.no_grad():
        nt = F.normalize(t.unsqueeze(0) - t.unsqueeze(1), p=2, dim=2)
        t_angle = torch.bmm(nt, nt.transpose(1, 2)).view(-1)
    ns = F.normalize(s.unsqueeze(0) - s.unsqueeze(1), p=2, dim=2)
    s_angle = torch.bmm(ns, ns.transpose(1, 2)).view(-1)
    return w * F.smooth_l1_loss(s_angle, t_angle)


# RepDistiller distiller_zoo/CC.py (Correlation), on already-embedded features
def cc(student, teacher):
    delta = torch.abs(student - teacher)
    return torch.mean((delta[:-1] * delta[1:]).sum(1))


# RepDistiller distiller_zoo/VID.py (VIDLoss.forward) after the regressor: pred_mean given
def vid(pred_mean, target, log_scale, eps=1e-5):
    pred_var = (torch.log(1.0 + torch.exp(log_scale)) + eps).view(1, -1, 1, 1)
    return torch.mean(0.5 * ((pred_mean - target) ** 2 / pred_var + torch.log(pred_var)))


def token_reduce(per_token, labels):
    """Sum over the vocabulary already done; mask positions labelled -100, divide by their count
    (at least 1); without labels divide the full sum by the batch size (loss-conventions.md)."""
    if labels is None:
        return per_token.sum() / per_token.shape[0]
    mask = labels != -100
    return per_token[mask].sum() / mask.sum().clamp(min=1)


# TRL GKDTrainer.generalized_jsd_loss (beta = 0 forward KL, beta = 1 reverse KL), T without T²
def gjsd(student, teacher, labels, beta, temperature):
    s = F.log_softmax(student / temperature, dim=-1)
    t = F.log_softmax(teacher / temperature, dim=-1)
    if beta == 0:
        jsd = F.kl_div(s, t, reduction="none", log_target=True)
    elif beta == 1:
        jsd = F.kl_div(t, s, reduction="none", log_target=True)
    else:
        b = torch.tensor(beta, dtype=s.dtype)
        m = torch.logsumexp(torch.stack([s + torch.log(1 - b), t + torch.log(b)]), dim=0)
        jsd = b * F.kl_div(m, t, reduction="none", log_target=True) + (1 - b) * F.kl_div(m, s, reduction="none", log_target=True)
    return token_reduce(jsd.sum(-1), None if labels is None else labels.long())


# DistiLLM (Ko et al., ICML 2024), paper definitions: SKL = KL(p || a p + (1-a) q), SRKL = KL(q || (1-a) p + a q)
def skew_kl(student, teacher, labels, alpha, temperature):
    p = F.softmax(teacher / temperature, -1)
    q = F.softmax(student / temperature, -1)
    mix = alpha * p + (1 - alpha) * q
    return token_reduce((p * (torch.log(p) - torch.log(mix))).sum(-1), labels.long())


def skew_rkl(student, teacher, labels, alpha, temperature):
    p = F.softmax(teacher / temperature, -1)
    q = F.softmax(student / temperature, -1)
    mix = (1 - alpha) * p + alpha * q
    return token_reduce((q * (torch.log(q) - torch.log(mix))).sum(-1), labels.long())


# Total variation distance per token: 0.5 * sum |p - q|
def tvd(student, teacher, labels, temperature):
    p = F.softmax(teacher / temperature, -1)
    q = F.softmax(student / temperature, -1)
    return token_reduce(0.5 * (p - q).abs().sum(-1), labels.long())


# matchmaker losses/msmargin.py (MSMarginLoss)
def margin_mse(s_pos, s_neg, t_pos, t_neg):
    return torch.mean(((s_pos - s_neg) - (t_pos - t_neg)) ** 2)


# allRank models/losses/listNet.py, teacher scores as y_true; padding marked by pad = 1
def listnet(student, teacher, pad, eps=1e-10):
    y_pred = student.clone()
    y_true = teacher.clone()
    mask = pad.bool()
    y_pred[mask] = float("-inf")
    y_true[mask] = float("-inf")
    preds_log = torch.log(F.softmax(y_pred, dim=1) + eps)
    return torch.mean(-torch.sum(F.softmax(y_true, dim=1) * preds_log, dim=1))


# Chen et al., NeurIPS 2017, teacher-bounded regression loss (L_b), mean over the batch
def bounded_regression(student, teacher, target, margin):
    es = ((student - target) ** 2).sum(1)
    et = ((teacher - target) ** 2).sum(1)
    return torch.where(es + margin > et, es, torch.zeros_like(es)).mean()


def output_l1(student, teacher):
    return F.l1_loss(student, teacher)


def output_l2(student, teacher):
    return F.mse_loss(student, teacher)


def output_smooth_l1(student, teacher):
    return F.smooth_l1_loss(student, teacher, beta=1.0)


# RepDistiller distiller_zoo/FSP.py (FSP.compute_fsp + compute_loss), for two levels -> one pair
def fsp(s_bot, s_top, t_bot, t_top):
    def g(bot, top):
        b_H, t_H = bot.shape[2], top.shape[2]
        if b_H > t_H:
            bot = F.adaptive_avg_pool2d(bot, (t_H, t_H))
        elif b_H < t_H:
            top = F.adaptive_avg_pool2d(top, (b_H, b_H))
        bot = bot.unsqueeze(1)
        top = top.unsqueeze(2)
        bot = bot.view(bot.shape[0], bot.shape[1], bot.shape[2], -1)
        top = top.view(top.shape[0], top.shape[1], top.shape[2], -1)
        return (bot * top).mean(-1)
    return (g(s_bot, s_top) - g(t_bot, t_top)).pow(2).mean()


# DistilBERT-style hidden-state cosine loss (nn.CosineEmbeddingLoss with target 1), on projected student states
def hidden_cosine(student, teacher):
    return F.cosine_embedding_loss(student, teacher, torch.ones(student.shape[0], dtype=student.dtype))


# RepDistiller distiller_zoo/AB.py (ABLoss with criterion_alternative_l2), summed as in
# helper/pretrain.py; levels s0 (shallow), s1 (deep)
def ab(s0, s1, t0, t1, margin):
    def alt_l2(source, target):
        loss = ((source + margin) ** 2 * ((source > -margin) & (target <= 0)).float()
                + (source - margin) ** 2 * ((source <= margin) & (target > 0)).float())
        return torch.abs(loss).sum()

    feats = [(s0, t0), (s1, t1)]
    n = len(feats)
    w = [2 ** (i - n + 1) for i in range(n)]
    bsz = s0.shape[0]
    losses = [wi * alt_l2(s, t) / bsz / 1000 * 3 for wi, (s, t) in zip(w, feats)]
    return sum(losses)


# RepDistiller distiller_zoo/FT.py (FactorTransfer, p1 = 2, p2 = 1) on factor maps
def ft(student, teacher):
    s_H, t_H = student.shape[2], teacher.shape[2]
    if s_H > t_H:
        student = F.adaptive_avg_pool2d(student, (t_H, t_H))
    elif s_H < t_H:
        teacher = F.adaptive_avg_pool2d(teacher, (s_H, s_H))

    def factor(f):
        return F.normalize(f.pow(2).mean(1).view(f.size(0), -1))

    return (factor(student) - factor(teacher)).abs().mean()


# mdistiller distillers/OFD.py (feat_loss and ofd_loss), connector already applied
def ofd(s0, s1, t0, t1, m0, m1):
    def feat_loss(source, target, margin):
        margin = margin.view(1, -1, 1, 1)
        loss = ((source - margin) ** 2 * ((source > margin) & (target <= margin)).float()
                + (source - target) ** 2 * ((source > target) & (target > margin) & (target <= 0)).float()
                + (source - target) ** 2 * (target > 0).float())
        return torch.abs(loss).mean(dim=0).sum()

    feats = [(s0, t0, m0), (s1, t1, m1)]
    total = 0
    for i, (s, t, m) in enumerate(feats):
        total = total + feat_loss(s, F.adaptive_avg_pool2d(t, s.shape[-2:]), m) / 2 ** (len(feats) - i - 1)
    return total


# mdistiller init_ofd_modules margin, with norm.cdf(x) = 0.5 * erfc(-x / sqrt(2))
def ofd_margin(std, mean):
    s = abs(std)
    m = mean
    cdf = 0.5 * math.erfc((m / s) / math.sqrt(2))
    if cdf > 0.001:
        return -s * math.exp(-((m / s) ** 2) / 2) / math.sqrt(2 * math.pi) / cdf + m
    return -3 * s


# mdistiller distillers/ReviewKD.py (hcl_loss)
def hcl(s0, s1, s2, t0, t1, t2):
    loss_all = 0.0
    for fs, ft_ in zip([s0, s1, s2], [t0, t1, t2]):
        n, c, h, w = fs.shape
        loss = F.mse_loss(fs, ft_, reduction="mean")
        cnt = 1.0
        tot = 1.0
        for l in [4, 2, 1]:
            if l >= h:
                continue
            tmpfs = F.adaptive_avg_pool2d(fs, (l, l))
            tmpft = F.adaptive_avg_pool2d(ft_, (l, l))
            cnt /= 2.0
            loss += F.mse_loss(tmpfs, tmpft, reduction="mean") * cnt
            tot += cnt
        loss = loss / tot
        loss_all = loss_all + loss
    return loss_all


# RepDistiller crd/memory.py (ContrastMemory scores with fixed Z) and crd/criterion.py
# (ContrastLoss); v_s, v_t are the embedded, normalised features
def crd(v_s, v_t, mem_s, mem_t, idx, z, t):
    idx = idx.long()
    b, k1 = idx.shape
    n_data = mem_s.shape[0]
    w_t = torch.index_select(mem_t, 0, idx.view(-1)).view(b, k1, -1)
    out_s = torch.exp(torch.bmm(w_t, v_s.view(b, -1, 1)) / t).view(b, k1) / z[0]
    w_s = torch.index_select(mem_s, 0, idx.view(-1)).view(b, k1, -1)
    out_t = torch.exp(torch.bmm(w_s, v_t.view(b, -1, 1)) / t).view(b, k1) / z[1]

    def contrast_loss(x, eps=1e-7):
        bsz = x.shape[0]
        m = x.size(1) - 1
        Pn = 1 / float(n_data)
        P_pos = x.select(1, 0)
        log_D1 = torch.div(P_pos, P_pos.add(m * Pn + eps)).log_()
        P_neg = x.narrow(1, 1, m)
        log_D0 = torch.div(P_neg.clone().fill_(m * Pn), P_neg.add(m * Pn + eps)).log_()
        return -(log_D1.sum(0) + log_D0.view(-1, 1).sum(0)) / bsz

    return (contrast_loss(out_s) + contrast_loss(out_t)).reshape(())


# RepDistiller crd/memory.py memory update (index_copy_ of the renormalised momentum rows)
def crd_memory_case(name, bank, rows, v, momentum):
    bank = bank.to(DT)
    v = v.to(DT)
    l_pos = torch.index_select(bank, 0, rows.long()) * momentum + v * (1 - momentum)
    updated = l_pos.div(l_pos.pow(2).sum(1, keepdim=True).pow(0.5))
    out = bank.clone()
    out.index_copy_(0, rows.long(), updated)
    return {"name": name, "params": {"momentum": momentum}, "inputs": {"bank": arr(bank), "rows": arr(rows.double()), "v": arr(v)},
            "value": 0.0, "grads": {"bank": arr(out)}}


# RepDistiller distiller_zoo/KDSVD.py (k = 1), torch.svd replaced by torch.linalg.svd (same
# factorisation), plus distill's documented sign rule for the teacher vectors: the entry of
# largest magnitude is made positive (LAPACK's sign is arbitrary and changes the value).
def kdsvd(s0, s1, s2, t0, t1, t2, k=1):
    def removenan(x):
        return torch.where(torch.isfinite(x), x, torch.zeros_like(x))

    def svd(feat, n):
        size = feat.shape
        x = feat.view(-1, size[1], size[2] * size[2]).transpose(-2, -1)
        u, s, vh = torch.linalg.svd(x, full_matrices=False)
        v = vh.transpose(-2, -1)
        u, s, v = removenan(u), removenan(s), removenan(v)
        return F.normalize(u[:, :, :n], dim=1), F.normalize(s[:, :n], dim=1), F.normalize(v[:, :, :n], dim=1)

    def orient(v):
        idx = v.abs().argmax(dim=1, keepdim=True)
        return v * v.gather(1, idx).sign()

    def align_rsv(a, b):
        cosine = torch.matmul(a.transpose(-2, -1), b)
        max_abs_cosine, _ = torch.max(torch.abs(cosine), 1, keepdim=True)
        mask = torch.where(torch.eq(max_abs_cosine, torch.abs(cosine)), torch.sign(cosine), torch.zeros_like(cosine))
        return torch.matmul(a, mask), b

    v_sb = v_tb = None
    losses = []
    for i, (f_s, f_t) in enumerate(zip([s0, s1, s2], [t0, t1, t2])):
        _, s_t, v_t = svd(f_t, k)
        v_t = orient(v_t)
        _, _, v_s = svd(f_s, k + 3)
        v_s, v_t = align_rsv(v_s, v_t)
        s_t = s_t.unsqueeze(1)
        v_t = v_t * s_t
        v_s = v_s * s_t
        if i > 0:
            s_rbf = torch.exp(-(v_s.unsqueeze(2) - v_sb.unsqueeze(1)).pow(2) / 8)
            t_rbf = torch.exp(-(v_t.unsqueeze(2) - v_tb.unsqueeze(1)).pow(2) / 8)
            l2loss = (s_rbf - t_rbf.detach()).pow(2)
            l2loss = torch.where(torch.isfinite(l2loss), l2loss, torch.zeros_like(l2loss))
            losses.append(l2loss.sum())
        v_tb, v_sb = v_t, v_s
    bsz = s0.shape[0]
    return sum(l / bsz for l in losses)


def spectral(b, c, h, sig):
    """Feature maps [b, c, h, h] with the given distinct singular values (of the [h*h, c] view)."""
    out = []
    for _ in range(b):
        u, _ = torch.linalg.qr(torch.randn(h * h, len(sig), dtype=DT))
        v, _ = torch.linalg.qr(torch.randn(c, len(sig), dtype=DT))
        out.append((v @ torch.diag(torch.tensor(sig, dtype=DT)) @ u.T).reshape(c, h, h))
    return torch.stack(out)


# Multi-teacher KD: averaged logits (You et al. 2017) and CA-MKD helper/loops.py's
# AVERAGE_LOSS (here with explicit weights) and CAMKD branches, with its DistillKL(is_ca=True).
def mt_kd_logits(student, t0, t1, t2, temperature):
    return kd(student, (t0 + t1 + t2) / 3, temperature)


def mt_kd_fixed(student, t0, t1, t2, w0, w1, w2, temperature):
    return w0 * kd(student, t0, temperature) + w1 * kd(student, t1, temperature) + w2 * kd(student, t2, temperature)


def mt_kd_confidence(student, t0, t1, t2, target, temperature):
    teachers = [t0, t1, t2]
    target = target.long()
    loss_t = torch.stack([F.cross_entropy(t, target, reduction="none") for t in teachers], dim=0)
    attention = (1.0 - F.softmax(loss_t, dim=0)) / (len(teachers) - 1)
    p_s = F.log_softmax(student / temperature, dim=1)
    div = torch.stack([(F.kl_div(p_s, F.softmax(t / temperature, dim=1), reduction="none") * temperature**2).sum(-1) for t in teachers], dim=0)
    return (attention * div).sum() / (student.shape[0] * len(teachers))


# KDCL-naive / ONE-style online ensemble: each member matches the detached mean logits.
def ensemble_kd(s0, s1, temperature):
    mean = ((s0 + s1) / 2).detach()
    return kd(s0, mean, temperature) + kd(s1, mean, temperature)


# Teacher-free KD, manually designed teacher (Tf-KD_reg): Yuan et al.'s my_loss_function.py,
# loss_kd_regularization, without its cross-entropy part (a separate `ce` term in distill):
# nn.KLDivLoss() with its default elementwise-mean reduction, the student's log-softmax at T = 1,
# the virtual teacher's probabilities softened by softmax(p / T), times the multiplier.
def tf_kd(student, target, correct_prob, temperature, multiplier):
    k = student.shape[1]
    virtual = torch.full_like(student, (1 - correct_prob) / (k - 1))
    virtual[torch.arange(student.shape[0]), target.long()] = correct_prob
    return torch.nn.KLDivLoss()(F.log_softmax(student, dim=1), F.softmax(virtual / temperature, dim=1)) * multiplier


# Be Your Own Teacher: luanyunteng/pytorch-be-your-own-teacher train.py, the heads' part of
# total_loss for two heads (the deepest CE is a separate `ce` term in distill):
# (1 - alpha) * CE(head) + alpha * kd_loss_function(head, softmax(z / T).detach()) * T^2
# + beta * feature_loss_function(head feature, final feature.detach()).
def byot(z1, z2, f1, f2, z, f, target, temperature, alpha, beta):
    def kd_loss_function(output, target_output):
        output = output / temperature
        output_log_softmax = torch.log_softmax(output, dim=1)
        return -torch.mean(torch.sum(output_log_softmax * target_output, dim=1))

    def feature_loss_function(fea, target_fea):
        loss = (fea - target_fea) ** 2 * ((fea > 0) | (target_fea > 0)).float()
        return torch.abs(loss).sum()

    target = target.long()
    soft = torch.softmax(z / temperature, dim=1).detach()
    total = 0
    for zi, fi in ((z1, f1), (z2, f2)):
        total = total + (1 - alpha) * F.cross_entropy(zi, target) + alpha * kd_loss_function(zi, soft) * temperature**2 + beta * feature_loss_function(fi, f.detach())
    return total


# Instance relationship graph: Knowledge-Distillation-Zoo kd_losses/irg.py (after the authors'
# Caffe code), its IRG.forward with squared distances; the teacher's side is constant.
def irg(fm_s1, fm_s2, feat_s, out_s, fm_t1, fm_t2, feat_t, out_t, w_vert, w_edge, w_tran):
    eps = 1e-12

    def dist_fms(fm1, fm2):
        if fm1.size(2) > fm2.size(2):
            fm1 = F.adaptive_avg_pool2d(fm1, (fm2.size(2), fm2.size(3)))
        if fm1.size(1) < fm2.size(1):
            fm2 = (fm2[:, 0::2, :, :] + fm2[:, 1::2, :, :]) / 2.0
        fm1 = fm1.view(fm1.size(0), -1)
        fm2 = fm2.view(fm2.size(0), -1)
        d = torch.sum(torch.pow(fm1 - fm2, 2), dim=-1).clamp(min=eps)
        return d / d.max()

    def dist(x):
        x = x.view(x.size(0), -1)
        sq = x.pow(2).sum(dim=1)
        d = (sq.unsqueeze(0) + sq.unsqueeze(1) - 2 * torch.mm(x, x.t())).clamp(min=eps)
        d = d.clone()
        d[range(len(x)), range(len(x))] = 0
        return d / d.max()

    fm_t1, fm_t2, feat_t, out_t = fm_t1.detach(), fm_t2.detach(), feat_t.detach(), out_t.detach()
    vert = F.mse_loss(out_s, out_t)
    edge = (F.mse_loss(dist(feat_s), dist(feat_t)) + F.mse_loss(dist(fm_s1), dist(fm_t1)) + F.mse_loss(dist(fm_s2), dist(fm_t2))) / 3.0
    tran = F.mse_loss(dist_fms(fm_s1, fm_s2), dist_fms(fm_t1, fm_t2))
    return w_vert * vert + w_edge * edge + w_tran * tran


# torch.nn.CrossEntropyLoss(ignore_index=-100, label_smoothing=smoothing), mean reduction
def token_ce(logits, targets, smoothing):
    return F.cross_entropy(logits, targets.long(), ignore_index=-100, label_smoothing=smoothing)


def main():
    r = torch.randn
    fixtures = {
        "kd": [
            case("kd_b4_k10_T4", kd, {"student": r(4, 10) * 3, "teacher": r(4, 10) * 3}, ["student"], {"temperature": 4.0}),
            case("kd_b1_k5_T1", kd, {"student": r(1, 5), "teacher": r(1, 5) * 5}, ["student"], {"temperature": 1.0}),
            case("kd_b3_k7_T2_peaked", kd, {"student": r(3, 7), "teacher": r(3, 7) * 40}, ["student"], {"temperature": 2.0}),
        ],
        "dkd": [
            case("dkd_b4_k10", dkd, {"student": r(4, 10) * 2, "teacher": r(4, 10) * 3, "target": torch.tensor([1.0, 0.0, 9.0, 3.0])}, ["student"], {"alpha": 1.0, "beta": 8.0, "temperature": 4.0}),
            case("dkd_b1_k5", dkd, {"student": r(1, 5), "teacher": r(1, 5) * 4, "target": torch.tensor([2.0])}, ["student"], {"alpha": 0.5, "beta": 2.0, "temperature": 1.0}),
        ],
        "dist": [
            case("dist_b6_k10", dist, {"student": r(6, 10) * 2, "teacher": r(6, 10) * 3}, ["student"], {"beta": 1.0, "gamma": 1.0, "tau": 1.0}),
            case("dist_b3_k5_tau4", dist, {"student": r(3, 5), "teacher": r(3, 5) * 2}, ["student"], {"beta": 2.0, "gamma": 2.0, "tau": 4.0}),
        ],
        "kd_ls": [
            case("kdls_b4_k10_T2", kd_ls, {"student": r(4, 10) * 3, "teacher": r(4, 10) * 5 + 2}, ["student"], {"temperature": 2.0}),
            case("kdls_b2_k6_T4", kd_ls, {"student": r(2, 6), "teacher": r(2, 6)}, ["student"], {"temperature": 4.0}),
        ],
        "at": [
            case("at_same_size", at, {"student": r(2, 3, 4, 4), "teacher": r(2, 5, 4, 4)}, ["student"]),
            case("at_student_larger_7to3", at, {"student": r(2, 2, 7, 7), "teacher": r(2, 4, 3, 3)}, ["student"]),
            case("at_teacher_larger", at, {"student": r(1, 2, 2, 2), "teacher": r(1, 3, 4, 4)}, ["student"]),
        ],
        "nst": [
            case("nst_b2", nst, {"student": r(2, 3, 4, 4), "teacher": r(2, 5, 4, 4)}, ["student"]),
            case("nst_pool", nst, {"student": r(1, 2, 6, 6), "teacher": r(1, 2, 3, 3)}, ["student"]),
        ],
        "sp": [
            case("sp_b4_maps", sp, {"student": r(4, 3, 2, 2), "teacher": r(4, 5, 3, 3)}, ["student"]),
            case("sp_b2_flat", sp, {"student": r(2, 6), "teacher": r(2, 4)}, ["student"]),
        ],
        "pkt": [
            case("pkt_b5", pkt, {"student": r(5, 8), "teacher": r(5, 12)}, ["student"]),
            case("pkt_b2", pkt, {"student": r(2, 3), "teacher": r(2, 3)}, ["student"]),
        ],
        "rkd_distance": [
            case("rkd_d_b5", rkd_distance, {"student": r(5, 8), "teacher": r(5, 6) * 3}, ["student"], {"w": 25.0}),
            case("rkd_d_b2", rkd_distance, {"student": r(2, 3), "teacher": r(2, 3)}, ["student"], {"w": 25.0}),
        ],
        "rkd_angle": [
            case("rkd_a_b5", rkd_angle, {"student": r(5, 8), "teacher": r(5, 6) * 3}, ["student"], {"w": 50.0}),
            case("rkd_a_b3", rkd_angle, {"student": r(3, 4), "teacher": r(3, 4)}, ["student"], {"w": 50.0}),
        ],
        "cc": [
            case("cc_b5", cc, {"student": F.normalize(r(5, 8)), "teacher": F.normalize(r(5, 8))}, ["student", "teacher"]),
            case("cc_b2", cc, {"student": r(2, 3), "teacher": r(2, 3)}, ["student", "teacher"]),
        ],
        "vid": [
            case("vid_b2", vid, {"pred_mean": r(2, 3, 4, 4), "target": r(2, 3, 4, 4), "log_scale": torch.full((3,), float(torch.log(torch.exp(torch.tensor(5.0 - 1e-5)) - 1.0))) + 0.1 * r(3)}, ["pred_mean", "log_scale"]),
        ],
        "gjsd": [
            case("gjsd_beta0_forward_kl", gjsd, {"student": r(2, 3, 7) * 2, "teacher": r(2, 3, 7) * 2, "labels": torch.tensor([[1.0, -100.0, 4.0], [-100.0, 0.0, 2.0]])}, ["student"], {"beta": 0.0, "temperature": 1.0}),
            case("gjsd_beta1_reverse_kl", gjsd, {"student": r(2, 3, 7) * 2, "teacher": r(2, 3, 7) * 2, "labels": torch.tensor([[1.0, 2.0, 4.0], [-100.0, 0.0, 2.0]])}, ["student"], {"beta": 1.0, "temperature": 2.0}),
            case("gjsd_beta05", gjsd, {"student": r(2, 4, 5), "teacher": r(2, 4, 5) * 3, "labels": torch.tensor([[1.0, 2.0, -100.0, -100.0], [3.0, 0.0, 2.0, 1.0]])}, ["student"], {"beta": 0.5, "temperature": 1.0}),
            case("gjsd_beta01_nolabels", gjsd, {"student": r(3, 2, 6), "teacher": r(3, 2, 6)}, ["student"], {"beta": 0.1, "temperature": 1.0}, {"labels": None}),
        ],
        "skew_kl": [
            case("skl_a01", skew_kl, {"student": r(2, 3, 6) * 2, "teacher": r(2, 3, 6) * 2, "labels": torch.tensor([[1.0, -100.0, 4.0], [5.0, 0.0, 2.0]])}, ["student"], {"alpha": 0.1, "temperature": 1.0}),
        ],
        "skew_rkl": [
            case("srkl_a01", skew_rkl, {"student": r(2, 3, 6) * 2, "teacher": r(2, 3, 6) * 2, "labels": torch.tensor([[1.0, -100.0, 4.0], [5.0, 0.0, 2.0]])}, ["student"], {"alpha": 0.1, "temperature": 1.0}),
        ],
        "tvd": [
            case("tvd", tvd, {"student": r(2, 3, 6) * 2, "teacher": r(2, 3, 6) * 2, "labels": torch.tensor([[1.0, -100.0, 4.0], [5.0, 0.0, 2.0]])}, ["student"], {"temperature": 1.0}),
        ],
        "margin_mse": [
            case("margin_mse_b5", margin_mse, {"s_pos": r(5), "s_neg": r(5), "t_pos": r(5) * 3, "t_neg": r(5) * 3}, ["s_pos", "s_neg"]),
        ],
        "listnet": [
            case("listnet_padded", listnet, {"student": r(3, 5), "teacher": r(3, 5) * 2, "pad": torch.tensor([[0.0, 0, 0, 1, 1], [0, 0, 0, 0, 0], [0, 1, 0, 0, 1]])}, ["student"], {"eps": 1e-10}),
        ],
        "bounded_regression": [
            case("bounded_m0", bounded_regression, {"student": r(6, 2), "teacher": r(6, 2), "target": r(6, 2)}, ["student"], {"margin": 0.0}),
            case("bounded_m05", bounded_regression, {"student": r(6, 2), "teacher": r(6, 2), "target": r(6, 2)}, ["student"], {"margin": 0.5}),
        ],
        "output_l1": [case("l1", output_l1, {"student": r(3, 4), "teacher": r(3, 4)}, ["student"])],
        "output_l2": [case("l2", output_l2, {"student": r(3, 4), "teacher": r(3, 4)}, ["student"])],
        "output_smooth_l1": [case("smooth_l1", output_smooth_l1, {"student": r(3, 4) * 2, "teacher": r(3, 4) * 2}, ["student"])],
        "fsp": [
            case("fsp_same_size", fsp, {"s_bot": r(2, 3, 4, 4), "s_top": r(2, 5, 4, 4), "t_bot": r(2, 3, 4, 4), "t_top": r(2, 5, 4, 4)}, ["s_bot", "s_top"]),
            case("fsp_pool_bottom", fsp, {"s_bot": r(2, 2, 6, 6), "s_top": r(2, 4, 3, 3), "t_bot": r(2, 2, 6, 6), "t_top": r(2, 4, 3, 3)}, ["s_bot", "s_top"]),
        ],
        "hidden_cosine": [
            case("hidden_cos_b4", hidden_cosine, {"student": r(4, 6), "teacher": r(4, 6)}, ["student"]),
        ],
        "ab": [
            case("ab_two_levels", ab, {"s0": r(2, 3, 4, 4) * 1.5, "s1": r(2, 5, 2, 2) * 1.5, "t0": r(2, 3, 4, 4), "t1": r(2, 5, 2, 2)}, ["s0", "s1"], {"margin": 1.0}),
            case("ab_b1_margin05", ab, {"s0": r(1, 2, 3, 3), "s1": r(1, 2, 3, 3), "t0": r(1, 2, 3, 3), "t1": r(1, 2, 3, 3)}, ["s0", "s1"], {"margin": 0.5}),
        ],
        "ft": [
            case("ft_same_size", ft, {"student": r(2, 4, 3, 3), "teacher": r(2, 4, 3, 3)}, ["student"]),
            case("ft_pool_student", ft, {"student": r(2, 3, 6, 6), "teacher": r(2, 5, 3, 3)}, ["student"]),
        ],
        "ofd": [
            case("ofd_two_levels", ofd, {"s0": r(2, 3, 4, 4), "s1": r(2, 4, 2, 2), "t0": r(2, 3, 4, 4), "t1": r(2, 4, 2, 2), "m0": -r(3).abs() * 0.5, "m1": -r(4).abs() * 0.5}, ["s0", "s1"]),
            case("ofd_pool_teacher_b1", ofd, {"s0": r(1, 2, 2, 2), "s1": r(1, 2, 1, 1), "t0": r(1, 2, 4, 4), "t1": r(1, 2, 2, 2), "m0": torch.tensor([-0.3, -1.2]), "m1": torch.tensor([-0.8, -0.1])}, ["s0", "s1"]),
        ],
        "ofd_margin": [
            {"name": f"margin_std{sd}_mean{mu}", "params": {"std": sd, "mean": mu}, "inputs": {}, "value": ofd_margin(sd, mu), "grads": {}}
            for sd, mu in [(1.0, 0.0), (0.5, 0.3), (-0.7, -0.2), (0.2, 1.5), (2.0, -4.0)]
        ],
        "hcl": [
            case("hcl_three_levels", hcl, {"s0": r(2, 3, 8, 8), "s1": r(2, 4, 2, 2), "s2": r(2, 5, 1, 1), "t0": r(2, 3, 8, 8), "t1": r(2, 4, 2, 2), "t2": r(2, 5, 1, 1)}, ["s0", "s1", "s2"]),
            case("hcl_odd_sizes", hcl, {"s0": r(1, 2, 5, 5), "s1": r(1, 2, 3, 3), "s2": r(1, 2, 7, 7), "t0": r(1, 2, 5, 5), "t1": r(1, 2, 3, 3), "t2": r(1, 2, 7, 7)}, ["s0", "s1", "s2"]),
        ],
        "crd": [
            case("crd_b3_k4_n12", crd, {"v_s": F.normalize(r(3, 6)), "v_t": F.normalize(r(3, 6)), "mem_s": F.normalize(r(12, 6)), "mem_t": F.normalize(r(12, 6)),
                                        "idx": torch.tensor([[0.0, 4, 5, 7, 11], [5.0, 1, 1, 9, 2], [9.0, 0, 3, 6, 8]]), "z": torch.tensor([30.0, 45.0])}, ["v_s", "v_t"], {"t": 0.07}),
            case("crd_b1_k2_t05", crd, {"v_s": F.normalize(r(1, 4)), "v_t": F.normalize(r(1, 4)), "mem_s": F.normalize(r(5, 4)), "mem_t": F.normalize(r(5, 4)),
                                        "idx": torch.tensor([[2.0, 0, 4]]), "z": torch.tensor([2.0, 3.0])}, ["v_s", "v_t"], {"t": 0.5}),
        ],
        "crd_memory": [
            crd_memory_case("crd_memory_m05", F.normalize(r(6, 4)), torch.tensor([4.0, 1.0]), F.normalize(r(2, 4)), 0.5),
        ],
        "kdsvd": [
            case("kdsvd_three_levels", kdsvd, {
                "s0": spectral(2, 5, 3, [9.0, 5.0, 2.5, 1.2, 0.5]), "s1": spectral(2, 6, 3, [10.0, 6.0, 3.0, 1.5, 0.7, 0.3]), "s2": spectral(2, 6, 2, [8.0, 4.0, 2.0, 1.0]),
                "t0": spectral(2, 5, 3, [7.0, 3.0, 1.5, 0.8, 0.4]), "t1": spectral(2, 6, 3, [12.0, 5.0, 2.0, 1.0, 0.5, 0.2]), "t2": spectral(2, 6, 2, [6.0, 3.0, 1.5, 0.5])}, ["s0", "s1", "s2"]),
        ],
        "fitnet": [
            case("fitnet_b2_c3_4x4", fitnet, {"student": r(2, 3, 4, 4), "teacher": r(2, 3, 4, 4)}, ["student"]),
            case("fitnet_b1_c2_3x3", fitnet, {"student": r(1, 2, 3, 3), "teacher": r(1, 2, 3, 3)}, ["student"]),
        ],
    }
    # Cases added later are appended here, after every case above has drawn its inputs, so that
    # the seeded stream (and so every earlier case's numbers) stays as it was.
    # KDSVD with neighbouring singular values 0.97-0.99 apart, where an iterative eigensolver
    # converges slowly and the SVD's gradient (1 / (s_i^2 - s_j^2)) is large.
    fixtures["kdsvd"].append(case("kdsvd_close_spectrum", kdsvd, {
        "s0": spectral(2, 5, 3, [5.0, 4.9, 4.8, 4.7, 4.6]), "s1": spectral(2, 6, 3, [8.0, 7.8, 7.6, 7.5, 7.3, 7.2]), "s2": spectral(2, 6, 2, [3.0, 2.95, 2.9, 2.85]),
        "t0": spectral(2, 5, 3, [6.0, 5.9, 5.75, 5.6, 5.5]), "t1": spectral(2, 6, 3, [9.0, 8.8, 8.6, 8.4, 8.2, 8.0]), "t2": spectral(2, 6, 2, [4.0, 3.9, 3.8, 3.7])}, ["s0", "s1", "s2"]))
    # ListNet with matchmaker's eps: student scores spread widely so that some student
    # probabilities are far below 1e-6 and the two eps give different values.
    fixtures["listnet"].append(case("listnet_eps_1e-6_matchmaker", listnet, {"student": r(3, 6) * 8, "teacher": r(3, 6), "pad": torch.tensor([[0.0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0]])}, ["student"], {"eps": 1e-6}))
    # Multi-teacher and online-ensemble KD (issue 9).
    fixtures["mt_kd_logits"] = [
        case("mt_kd_logits_b4_k6", mt_kd_logits, {"student": r(4, 6) * 2, "t0": r(4, 6) * 3, "t1": r(4, 6), "t2": r(4, 6) * 5}, ["student"], {"temperature": 4.0}),
    ]
    fixtures["mt_kd_fixed"] = [
        case("mt_kd_fixed_b4_k6", mt_kd_fixed, {"student": r(4, 6) * 2, "t0": r(4, 6) * 3, "t1": r(4, 6), "t2": r(4, 6) * 5}, ["student"], {"w0": 0.5, "w1": 0.3, "w2": 0.2, "temperature": 2.0}),
    ]
    fixtures["mt_kd_confidence"] = [
        case("mt_kd_confidence_b5_k6", mt_kd_confidence, {"student": r(5, 6) * 2, "t0": r(5, 6) * 3, "t1": r(5, 6), "t2": r(5, 6) * 5, "target": torch.tensor([0.0, 3.0, 5.0, 1.0, 3.0])}, ["student"], {"temperature": 4.0}),
        case("mt_kd_confidence_b1_k3_T1", mt_kd_confidence, {"student": r(1, 3), "t0": r(1, 3) * 4, "t1": r(1, 3) * 4, "t2": r(1, 3), "target": torch.tensor([2.0])}, ["student"], {"temperature": 1.0}),
    ]
    fixtures["ensemble_kd"] = [
        case("ensemble_kd_b4_k5_T3", ensemble_kd, {"s0": r(4, 5) * 2, "s1": r(4, 5) * 3}, ["s0", "s1"], {"temperature": 3.0}),
    ]
    # Teacher-free KD (issue 10).
    fixtures["tf_kd"] = [
        case("tf_kd_b4_k10_T20", tf_kd, {"student": r(4, 10) * 3, "target": torch.tensor([1.0, 0.0, 9.0, 3.0])}, ["student"], {"correct_prob": 0.99, "temperature": 20.0, "multiplier": 100.0}),
        case("tf_kd_b2_k3_T1", tf_kd, {"student": r(2, 3), "target": torch.tensor([2.0, 2.0])}, ["student"], {"correct_prob": 0.9, "temperature": 1.0, "multiplier": 1.0}),
    ]
    # Be Your Own Teacher (issue 10): features with negative entries, so the mask matters.
    fixtures["byot"] = [
        case("byot_b4_k5_d3", byot, {"z1": r(4, 5) * 2, "z2": r(4, 5), "f1": r(4, 3), "f2": r(4, 3), "z": r(4, 5) * 3, "f": r(4, 3), "target": torch.tensor([0.0, 4.0, 2.0, 2.0])}, ["z1", "z2", "f1", "f2"], {"temperature": 3.0, "alpha": 0.1, "beta": 1e-6}),
        case("byot_b2_k3_d2_strong", byot, {"z1": r(2, 3), "z2": r(2, 3), "f1": r(2, 2), "f2": r(2, 2), "z": r(2, 3), "f": r(2, 2), "target": torch.tensor([1.0, 0.0])}, ["z1", "z2", "f1", "f2"], {"temperature": 1.0, "alpha": 0.5, "beta": 0.3}),
    ]
    # Instance relationship graph (issue 10): deep maps with twice the channels and half the size.
    fixtures["irg"] = [
        case("irg_b4", irg, {"fm_s1": r(4, 2, 4, 4), "fm_s2": r(4, 4, 2, 2), "feat_s": r(4, 5), "out_s": r(4, 3), "fm_t1": r(4, 3, 4, 4) * 2, "fm_t2": r(4, 6, 2, 2), "feat_t": r(4, 7), "out_t": r(4, 3) * 2}, ["fm_s1", "fm_s2", "feat_s", "out_s"], {"w_vert": 0.1, "w_edge": 5.0, "w_tran": 5.0}),
        case("irg_b3_same_size", irg, {"fm_s1": r(3, 2, 2, 2), "fm_s2": r(3, 2, 2, 2), "feat_s": r(3, 4), "out_s": r(3, 2), "fm_t1": r(3, 4, 2, 2), "fm_t2": r(3, 4, 2, 2), "feat_t": r(3, 4), "out_t": r(3, 2)}, ["fm_s1", "fm_s2", "feat_s", "out_s"], {"w_vert": 1.0, "w_edge": 1.0, "w_tran": 2.0}),
    ]
    # Next-token cross-entropy of a language model (issue 11): PyTorch's ignore_index = -100 and
    # label smoothing, the mean over the positions that have a target.
    fixtures["token_ce"] = [
        case("token_ce_ignore", token_ce, {"logits": r(6, 9) * 2, "targets": torch.tensor([3.0, -100.0, 0.0, 8.0, -100.0, 5.0])}, ["logits"], {"smoothing": 0.0}),
        case("token_ce_smooth", token_ce, {"logits": r(4, 5), "targets": torch.tensor([1.0, 4.0, -100.0, 0.0])}, ["logits"], {"smoothing": 0.1}),
    ]
    with open(OUT, "w") as f:
        json.dump(fixtures, f, indent=1)
        f.write("\n")
    print("wrote", OUT, "with torch", torch.__version__)


if __name__ == "__main__":
    main()
