using BatchCore.Jobs;
using FsCheck.Xunit;

namespace BatchCore.Tests.Jobs;

public class JobListTests
{
    private static Job NewJob(long seq) => new TopJob("j" + seq, "n", null!, null!, seq, 0);

    /// <summary>
    /// Invariant: a JobList is the list of the jobs added, in order, minus those removed — the same as a List of them —
    /// for any sequence of adds and removals, across chunk boundaries.
    /// </summary>
    [Property(MaxTest = 200)]
    public bool BehavesLikeAList(ushort[] steps, byte modulus)
    {
        var list = new JobList();
        var model = new List<Job>();
        long seq = 0;
        foreach (var step in steps ?? [])
        {
            if (step % 7 == 0 && modulus > 1)
            {
                // remove every job whose sequence number falls in one residue class
                var residue = step % modulus;
                Predicate<Job> match = j => j.Seq % modulus == residue;
                if (list.RemoveAll(match) != model.RemoveAll(match))
                {
                    return false;
                }
            }
            else
            {
                // add a run of jobs (up to 3 chunks' worth, to cross boundaries)
                for (var i = 0; i < step % (3 * JobList.ChunkSize); i++)
                {
                    var job = NewJob(seq++);
                    list.Add(job);
                    model.Add(job);
                }
            }

            if (list.Count != model.Count || !list.SequenceEqual(model))
            {
                return false;
            }
        }

        return Enumerable.Range(0, model.Count).All(i => ReferenceEquals(list[i], model[i]));
    }

    [Fact]
    public void Indexer_RejectsIndicesOutsideTheList()
    {
        var list = new JobList();
        list.Add(NewJob(1));

        Assert.Throws<ArgumentOutOfRangeException>(() => list[1]);
        Assert.Throws<ArgumentOutOfRangeException>(() => list[-1]);
    }

    [Fact]
    public void RemovingEverything_LeavesAnEmptyList_ThatTakesNewJobs()
    {
        var list = new JobList();
        for (var i = 0; i < JobList.ChunkSize + 1; i++)
        {
            list.Add(NewJob(i));
        }

        Assert.Equal(JobList.ChunkSize + 1, list.RemoveAll(_ => true));
        Assert.Empty(list);
        list.Add(NewJob(99));
        Assert.Equal(99, Assert.Single(list).Seq);
    }
}
