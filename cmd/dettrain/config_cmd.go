package main

import (
	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/engine"
)

// ConfigOptions are the flags shared by commands that read a config.
type ConfigOptions = engine.ConfigOptions

// addConfigFlags adds --config and --set.
func addConfigFlags(cmd *cobra.Command, o *ConfigOptions) {
	cmd.Flags().StringVarP(&o.File, "config", "c", "", "YAML config file (required)")
	cmd.Flags().StringArrayVar(&o.Sets, "set", nil, "override a config key: --set train.lr=0.01 (repeatable)")
}

func newConfigCmd(io *IO, runF func(*ConfigOptions) error) *cobra.Command {
	o := &ConfigOptions{}
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the resolved config (defaults, file, DETTRAIN_* environment, --set)",
		Example: `  dettrain config --config configs/bccd-yolov3-tiny.yaml --set train.lr=0.002
  DETTRAIN_TRAIN_EPOCHS=5 dettrain config -c configs/demo.yaml`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			c, err := o.Load()
			if err != nil {
				return err
			}
			b, err := c.YAML()
			if err != nil {
				return err
			}
			_, err = io.Out.Write(b)
			return err
		},
	}
	addConfigFlags(cmd, o)
	return cmd
}
