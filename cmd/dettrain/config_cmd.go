package main

import (
	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/config"
)

// ConfigOptions are the flags shared by commands that read a config.
type ConfigOptions struct {
	File string
	Sets []string
}

func (o *ConfigOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.File, "config", "c", "", "YAML config file (required)")
	cmd.Flags().StringArrayVar(&o.Sets, "set", nil, "override a config key: --set train.lr=0.01 (repeatable)")
}

func (o *ConfigOptions) load() (*config.Config, error) {
	if o.File == "" {
		return nil, usagef("--config is required")
	}
	return config.Load(o.File, config.LoadOptions{Sets: o.Sets})
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
			c, err := o.load()
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
	o.addFlags(cmd)
	return cmd
}
