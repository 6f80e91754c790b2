/* The reference loop's walk over pre-drawn exponential rows, one symbol per row, in C.
 *
 * What service/lm/sampling.py's `Sampler` does in Python, step for step: at row t in state s,
 * the symbol is argmax_c P[s, c] / E[t, c] (float32 division, the first index on ties, a NaN
 * winning at once as numpy's argmax has it), then the state moves to next[s, c], or back to the
 * start at the end (c = 0) or at the cut (`cut_at` symbols). Built as an optional extension:
 * where no compiler is at hand, the Python loop gives the same words.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>

/* walk(P, next, E, V, start, state, length, cut_at, out, cuts) -> (state, length)
 *   P: float32 (S, V), next: int32 (S, V), E: float32 (R, V) buffers;
 *   out: int32 (R,) writable: the symbol drawn at each row; cuts: uint8 (R,) writable: 1 where
 *   the word was cut after that row's symbol. `state`/`length`: where the walk stands before
 *   row 0 (a word may continue across blocks). */
static PyObject *walk(PyObject *self, PyObject *args) {
    Py_buffer P, N, E, out, cuts;
    Py_ssize_t V, start, state, length, cut_at;
    if (!PyArg_ParseTuple(args, "y*y*y*nnnnnw*w*", &P, &N, &E, &V, &start, &state, &length,
                          &cut_at, &out, &cuts))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t S = P.len / (Py_ssize_t)(sizeof(float) * V);
    Py_ssize_t R = E.len / (Py_ssize_t)(sizeof(float) * V);
    if (V < 1 || N.len != P.len || out.len < R * (Py_ssize_t)sizeof(int32_t) || cuts.len < R ||
        state < 0 || state >= S || start < 0 || start >= S || cut_at < 1) {
        PyErr_SetString(PyExc_ValueError, "walk: inconsistent buffers or arguments");
        goto done;
    }
    const float *p = (const float *)P.buf, *e = (const float *)E.buf;
    const int32_t *nx = (const int32_t *)N.buf;
    int32_t *o = (int32_t *)out.buf;
    uint8_t *cut = (uint8_t *)cuts.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t t = 0; t < R; t++) {
        const float *row = p + state * V, *draw = e + t * V;
        Py_ssize_t best = 0;
        float top = row[0] / draw[0];
        if (!isnan(top)) {
            for (Py_ssize_t c = 1; c < V; c++) {
                float q = row[c] / draw[c];
                if (isnan(q)) {
                    best = c;
                    break;
                }
                if (q > top) {
                    top = q;
                    best = c;
                }
            }
        }
        o[t] = (int32_t)best;
        cut[t] = 0;
        if (best == 0) {
            state = start;
            length = 0;
        } else if (++length == cut_at) {
            cut[t] = 1;
            state = start;
            length = 0;
        } else {
            Py_ssize_t s2 = nx[state * V + best];
            state = (s2 >= 0 && s2 < S) ? s2 : start;
        }
    }
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("nn", state, length);
done:
    PyBuffer_Release(&P);
    PyBuffer_Release(&N);
    PyBuffer_Release(&E);
    PyBuffer_Release(&out);
    PyBuffer_Release(&cuts);
    return result;
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS, "The reference loop's walk over a block of exponential rows."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_walk", NULL, -1, methods};

PyMODINIT_FUNC PyInit__walk(void) { return PyModule_Create(&module); }
