"""The course notebook's own code (section 1.2.2 of ../shared/seed/), kept verbatim.

This is the reference the project is checked against; it is not imported by the project.
The three cells below are copied as they stand in the notebook (cells [40], [41], [42]), with
only the indentation restored that the text dump lost. A fourth, the counting model the
notebook refers to (not a cell of it), is written at the end of the file, and says so. The one import the cells rely on from an
earlier cell of the notebook (cell [6], `import torch.nn.functional as F`) is stated first.

`tests/reference.py` runs these cells with `exec`, redirecting `open('civil_mots.txt')` to any
word list and substituting the seed and the number of words in the sampling cell. Nothing in the
cells themselves is changed.
"""

PRELUDE = """
import torch.nn.functional as F
"""

# Cell [40]: data, vocabulary, training examples, initial W.
CELL_DATA = """
#
# Générateur des mots selon notre modèle de langue génératif bigrams par réseau de neurones
#
import torch

# Lecture des données
EOS='.'
words = open('civil_mots.txt', 'r').read().splitlines()
chars = sorted(list(set(''.join(words))))
nb_chars = len(chars) + 1 # On ajoute 1 pour EOS

# Dictionnaires caractère <-> entier
ctoi = {c:i+1 for i,c in enumerate(chars)}
ctoi['.'] = 0
itoc = {i:c for c,i in ctoi.items()}# Création du dataset avec tous les mots
# Génération du jeu d'entraînement
xs, ys = [], []
for w in words:
    chs = ['.'] + list(w) + ['.']
    for ch1, ch2 in zip(chs, chs[1:]):
        ix1 = ctoi[ch1]
        ix2 = ctoi[ch2]
        xs.append(ix1)
        ys.append(ix2)

xs = torch.tensor(xs)
ys = torch.tensor(ys)
num = xs.nelement()
print('NB exemples:', num)

# Initialisation du réseau (une seule couche de neurones sans biais)
g = torch.Generator().manual_seed(2147483647)
W = torch.randn((nb_chars, nb_chars), generator=g, requires_grad=True)
"""

# Cell [41]: 600 steps of full-batch gradient descent.
CELL_TRAIN = """
# Apprentissage: descente du gradient
for k in range(600):

    # Forward pass
    xenc = F.one_hot(xs, num_classes=nb_chars).float() # input to the network: one-hot encoding
    logits = xenc @ W # predict log-counts (logits)
    counts = logits.exp() # counts, equivalent to N
    probs = counts / counts.sum(1, keepdims=True) # probabilities for next character
    loss = -probs[torch.arange(num), ys].log().mean() + 0.01*(W**2).mean() # + 0.01... for smoothing the model
    print(loss.item())

    # backward pass
    W.grad = None # set to zero the gradient
    loss.backward()

    # update
    W.data += -50 * W.grad
"""

# Cell [42]: sampling five words from seed 2147483647.
CELL_SAMPLE = """
# finally, sample from the 'neural net' model
g = torch.Generator().manual_seed(2147483647)

for i in range(5):

    out = []
    ix = 0
    while True:

        # ----------
        # Avec l'approche par comptage on utilisait:
        #p = P[ix]
        # ----------
        # NOW:
        xenc = F.one_hot(torch.tensor([ix]), num_classes=nb_chars).float()
        logits = xenc @ W # predict log-counts
        counts = logits.exp() # counts, equivalent to N
        p = counts / counts.sum(1, keepdims=True) # probabilities for next character
        # ----------

        ix = torch.multinomial(p, num_samples=1, replacement=True, generator=g).item()

        out.append(itoc[ix])
        if ix == 0:
            break
    print(''.join(out))
"""

# The counting model of the course's first part, which cell [42]'s comment `#p = P[ix]` refers
# to. It is not among the notebook's cells (the seed holds the course's second part only): this
# cell is written here in the notebook's own names (`words`, `ctoi`, `itoc`, `nb_chars` from
# cell [40]) and style, as the course states the method: the bigram counts N, the smoothed and
# normalised table `P = (N + 1).float(); P /= P.sum(1, keepdims=True)`, and cell [42]'s loop
# with `p = P[ix]` in place of the network. `tests/reference.py` substitutes the smoothing K
# for the 1, the seed and the number of words.
CELL_COUNTING = """
# Approche par comptage: la table des bigrammes
N = torch.zeros((nb_chars, nb_chars), dtype=torch.int64)
for w in words:
    chs = ['.'] + list(w) + ['.']
    for ch1, ch2 in zip(chs, chs[1:]):
        N[ctoi[ch1], ctoi[ch2]] += 1

P = (N + 1).float()
P /= P.sum(1, keepdims=True)

g = torch.Generator().manual_seed(2147483647)
for i in range(5):

    out = []
    ix = 0
    while True:
        p = P[ix]
        ix = torch.multinomial(p, num_samples=1, replacement=True, generator=g).item()

        out.append(itoc[ix])
        if ix == 0:
            break
    print(''.join(out))
"""
