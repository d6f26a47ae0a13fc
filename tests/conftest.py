import pytest
import torch

# One thread for the whole session, module-scoped fixtures included: float sums may round
# differently with another thread count, and reproducibility tests compare bit for bit.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_and_threads():
    """Every test starts from the same torch seed, on one thread.

    The tensors are small, so a second thread gains nothing; with another process busy, two
    OpenMP threads made one gradcheck 70× slower (spinning threads waiting for a core).
    """
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
