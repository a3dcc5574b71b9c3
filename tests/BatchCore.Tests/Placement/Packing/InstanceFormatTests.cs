using BatchCore.Placement.Packing.Instances;

namespace BatchCore.Tests.Placement.Packing;

public class InstanceFormatTests
{
    [Fact]
    public void BppLib_reads_count_capacity_and_weights_with_crlf()
    {
        var problem = BinPackingFormats.ReadBppLib(new StringReader("3\r\n150\r\n42\r\n69\r\n67\r\n"));
        Assert.Equal(3, problem.ItemCount);
        Assert.Equal(150, problem.Capacity[0]);
        Assert.Equal([42L, 69, 67], problem.Demands.ToArray());
    }

    [Fact]
    public void OrLibrary_scales_one_decimal_sizes_to_integers()
    {
        var text = " 1\n t60_00\n 100.0 3 1\n 25.5\n 40.1\n 34.4\n";
        var list = BinPackingFormats.ReadOrLibrary(new StringReader(text));
        Assert.Single(list);
        Assert.Equal("t60_00", list[0].Name);
        Assert.Equal(1000, list[0].Problem.Capacity[0]);
        Assert.Equal([255L, 401, 344], list[0].Problem.Demands.ToArray());
    }

    [Fact]
    public void Vbp_expands_item_types_by_their_demand()
    {
        var problem = VectorPackingFormats.ReadVbp(new StringReader("2\n10 20\n2\n1 2 1\n3 4 2\n"));
        Assert.Equal(2, problem.Dimensions);
        Assert.Equal(3, problem.ItemCount);
        Assert.Equal([1L, 2, 3, 4, 3, 4], problem.Demands.ToArray());
    }

    [Fact]
    public void Summary_reads_tab_separated_rows_with_unknown_optimum()
    {
        var text = "instance_name\tLB\tOPT\tbest_overall\n" + "class4_500_10_0\t120\t-1\t125\n";
        var summary = VectorPackingFormats.ReadSummary(new StringReader(text));
        Assert.Equal((120, (int?)null, 125), summary["class4_500_10_0"]);
    }
}
